"""The prompt-store service's event wiring. Its handlers arrive with the issue that builds the service;
until then it subscribes to nothing and only its settings and contract exist."""

from __future__ import annotations

from cairn_bus import EventRouter
from cairn_bus.service import run_service
from cairn_prompt_store.settings import Settings

router: EventRouter[None] = EventRouter("prompt-store")


def main() -> None:
    """Entry point of `python -m cairn_prompt_store`."""
    run_service(router, Settings(), None)
