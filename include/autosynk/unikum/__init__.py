"""autosynk.unikum."""
