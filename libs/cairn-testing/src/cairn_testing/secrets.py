"""Checks that a service's Settings read its credentials through `read_secret` (`*_FILE` honoured) and
keep them out of logs: the shared part of each service's `test_<service>_secrets.py`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cairn_bus.secrets import forget_secrets, redact, secret_env_name
from cairn_bus.settings import credential_fields

__all__ = ["settings_from_secret_files"]


@contextmanager
def settings_from_secret_files(
    settings_cls: type[Any],
    secrets: Mapping[str, str],
    dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Any]:
    """`settings_cls()` built with `CAIRN_POSTGRES_DSN=dsn` (no password) and each of `secrets` given
    only as a `CAIRN_<NAME>_FILE`; on exit, checks that every secret but the S3 access key (it names
    the account) is redacted from the settings' repr and from log text."""
    assert set(secrets) <= set(credential_fields(settings_cls))
    forget_secrets()
    monkeypatch.setenv("CAIRN_POSTGRES_DSN", dsn)
    for name, value in secrets.items():
        monkeypatch.delenv(secret_env_name(name), raising=False)
        (tmp_path / name).write_text(value + "\n")
        monkeypatch.setenv(secret_env_name(name) + "_FILE", str(tmp_path / name))
    try:
        settings = settings_cls()
        yield settings
        line = redact(f"{settings!r} " + " ".join(secrets.values()))
        for name, value in secrets.items():
            assert (value in line) is (name == "s3_access_key"), name
    finally:
        forget_secrets()
