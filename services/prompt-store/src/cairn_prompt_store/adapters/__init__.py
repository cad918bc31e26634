"""Adapters of the prompt store's ports: PostgreSQL, in-memory (tests), the HTTP server."""
