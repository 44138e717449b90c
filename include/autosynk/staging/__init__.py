"""autosynk.staging."""
