"""The audit service: subscribes to every topic of the registry and stores each event once.

Every topic includes the shadow topics (`cairn.responses.shadow`): the answers of replayed and
shadow requests, which the trail and `cairn replay --diff` need as much as the live ones.
"""

from __future__ import annotations

from cairn_audit.bootstrap import Deps, build
from cairn_audit.handlers import flush, on_any_event
from cairn_audit.settings import Settings
from cairn_bus import EventRouter
from cairn_bus.service import run_service
from cairn_events import AdminActionRecordedV1

router: EventRouter[Deps] = EventRouter("audit", shadows=True)
router.all_events(on_any_event)
router.after_batch(flush)
router.publishes(AdminActionRecordedV1)  # the bootstrap admin key's creation (CAIRN_AUTH_BOOTSTRAP_KEY_FILE)


def main() -> None:
    """Entry point of `python -m cairn_audit`."""
    run_service(router, Settings(), build)
