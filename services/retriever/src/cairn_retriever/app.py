"""The retriever service's event wiring. Its handlers arrive with the issue that builds the service;
until then it subscribes to nothing and only its settings and contract exist."""

from __future__ import annotations

from cairn_bus import EventRouter
from cairn_bus.service import run_service
from cairn_retriever.settings import Settings

router: EventRouter[None] = EventRouter("retriever")


def main() -> None:
    """Entry point of `python -m cairn_retriever`."""
    run_service(router, Settings(), None)
