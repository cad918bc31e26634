"""The evaluator's domain: registry rules, suites, metrics, gates and runs (no I/O)."""
