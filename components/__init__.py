"""Pulumi ComponentResources, one module per concern; see ``components/README.md``.

Nothing here imports the ops package: components know the stack config's shapes only through the
arguments their callers pass.
"""
