"""Cairn test helpers: local stack fixtures, `expect_events`, schema examples, in-loop services.

Also, imported by module: `cairn_testing.processes` (services as processes), `cairn_testing.databases`
(throw-away databases), `cairn_testing.tiny` (a tiny chat model), `cairn_testing.browser` (headless Chromium).
"""

from cairn_testing.events import Received, expect_events, start_group_at_end
from cairn_testing.examples import SchemaExample, schema_examples
from cairn_testing.services import running_service

__all__ = [
    "Received",
    "SchemaExample",
    "expect_events",
    "running_service",
    "schema_examples",
    "start_group_at_end",
]
