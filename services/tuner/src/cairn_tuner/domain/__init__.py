"""The tuner's domain: jobs, their states and the rules that name and describe them (no I/O)."""
