"""The evaluator service's event wiring. Its handlers arrive with the issue that builds the service;
until then it subscribes to nothing and only its settings and contract exist."""

from __future__ import annotations

from cairn_bus import EventRouter
from cairn_bus.service import run_service
from cairn_evaluator.settings import Settings

router: EventRouter[None] = EventRouter("evaluator")


def main() -> None:
    """Entry point of `python -m cairn_evaluator`."""
    run_service(router, Settings(), None)
