"""The CLI's tests run its commands in this process (typer's CliRunner); the CLI's callback signs as the
local stack's CLI key by setting `CAIRN_SIGNING_KEY_FILE` and `CAIRN_TRUSTED_KEYS_DIR` in `os.environ`
(`cairn_cli.main`). Each test gets the environment back as it found it, so no later test (in any
folder) inherits those keys and starts demanding signatures of its unsigned test events."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    before = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(before)
