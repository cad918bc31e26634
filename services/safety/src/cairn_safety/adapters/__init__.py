"""Adapters of the safety service: classifiers, the PostgreSQL review queue, policy files."""
