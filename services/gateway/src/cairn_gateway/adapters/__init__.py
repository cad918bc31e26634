"""The gateway's adapters: PostgreSQL and in-memory idempotency tables, the reply listener, the catalogue."""
