"""autosynk.mapping."""
