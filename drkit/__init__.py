"""drkit: the imperative side of the DR kit (backup engine, restore, verify, failover, drill).

It reads the typed stack config and stack outputs (``stackmodels``); it never imports the Pulumi
program (``infra``) or the components.
"""
