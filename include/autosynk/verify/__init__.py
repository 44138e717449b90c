"""autosynk.verify."""
