"""Adapters of the feedback service's ports: PostgreSQL, in memory, and the code version."""
