"""The evaluator's adapters: PostgreSQL, in-memory fakes, suite files, held-out rows in S3."""
