"""The CLI's direct database access is said on stderr and recorded on `cairn.admin` before it acts."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from cairn_bus import InMemoryPublisher, Publisher
from cairn_bus.direct_access import DIRECT_ACCESS, cli_actor, direct_access, record_direct_access
from cairn_bus.settings import ServiceSettings
from cairn_events import AdminActionRecordedV1


def in_memory(publisher: InMemoryPublisher) -> object:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Publisher]:
        yield publisher

    return opened


def test_the_actor_is_the_os_user_or_the_given_name_under_cli() -> None:
    assert cli_actor("ana") == "cli:ana"
    assert cli_actor("cli:ana") == "cli:ana"
    assert cli_actor().startswith("cli:")


async def test_the_warning_names_the_actor_and_the_record_is_published() -> None:
    publisher = InMemoryPublisher("/cairn/cli")
    stderr = io.StringIO()
    event = await record_direct_access(
        publisher, "prompts.label", "prompt:qa@production", tenant="acme", by="ana", stream=stderr
    )
    assert stderr.getvalue().startswith(
        "WARNING: direct database access as cli:ana; no RBAC applies (a service API with an API key applies roles and tenants)"
    )
    [published] = publisher.events(AdminActionRecordedV1.event_type)
    assert published == event
    assert isinstance(published, AdminActionRecordedV1)
    assert (published.actor, published.action, published.target, published.tenant) == (
        "cli:ana",
        "prompts.label",
        "prompt:qa@production",
        "acme",
    )
    assert published.details["access"] == DIRECT_ACCESS


def test_the_synchronous_form_warns_on_stderr_and_records(capsys: pytest.CaptureFixture[str]) -> None:
    publisher = InMemoryPublisher("/cairn/cli")
    event = direct_access(
        ServiceSettings(),
        "tune.cancel",
        "job:j-1",
        by="ben",
        details={"reason": "test"},
        open_publisher=in_memory(publisher),  # type: ignore[arg-type]
    )
    assert "direct database access as cli:ben" in capsys.readouterr().err
    assert publisher.events() == [event]
    assert event.details == {"reason": "test", "access": DIRECT_ACCESS}


def test_a_command_whose_access_cannot_be_recorded_is_refused() -> None:
    class Down(InMemoryPublisher):
        async def send(self, message: object) -> None:
            raise ConnectionError("broker down")

    with pytest.raises(SystemExit, match="not done: its direct database access could not be recorded"):
        direct_access(
            ServiceSettings(),
            "datasets.build",
            "dataset:qa",
            open_publisher=in_memory(Down("/cairn/cli")),  # type: ignore[arg-type]
        )
