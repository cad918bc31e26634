"""Every test starts with no registered secrets, so one test's secrets never redact another's output."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cairn_auth.secrets import forget_secrets


@pytest.fixture(autouse=True)
def no_registered_secrets() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()
