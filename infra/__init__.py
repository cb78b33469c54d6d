"""The Pulumi program: reads the typed stack config, composes components, exports the outputs."""
