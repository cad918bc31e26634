"""Cairn safety service: screens each request's input before inference and its output after it
(toxicity, personal data, prompt injection), decides allow/redact/block/review under the tenant's
policy file, and keeps the human review queue.

Entry points: `cairn_safety.app:router` (the service), `cairn_safety.cli:app` (`cairn safety`).
"""
