"""autosynk.demo."""
