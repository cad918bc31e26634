"""Cairn test helpers: local stack fixtures, expect_events, schema examples as fixtures."""
