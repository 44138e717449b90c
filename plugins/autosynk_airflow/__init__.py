"""Thin Airflow adapters for autosynk: hooks, callbacks and run-time configuration."""
