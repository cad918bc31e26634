"""Key stores: in memory (tests, single-process tools) and PostgreSQL."""
