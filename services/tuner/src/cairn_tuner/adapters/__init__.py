"""Adapters of the tuner's ports: PostgreSQL and in-memory job stores, the PEFT trainer."""
