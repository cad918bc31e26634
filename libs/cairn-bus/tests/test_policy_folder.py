"""Where a service's policy folder is found: `cairn_bus.policy_files.resolve_folder`."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn_bus.policy_files import resolve_folder


def test_an_absolute_folder_is_taken_as_given(tmp_path: Path) -> None:
    assert resolve_folder(tmp_path / "policies", "CAIRN_X_DIR", __file__) == tmp_path / "policies"


def test_a_relative_folder_is_found_from_the_working_directory_or_above(tmp_path: Path) -> None:
    (tmp_path / "infra" / "routing").mkdir(parents=True)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert (
        resolve_folder("infra/routing", "CAIRN_X_DIR", "/nowhere/mod.py", cwd=deep)
        == tmp_path / "infra/routing"
    )


def test_else_from_above_the_anchor_module(tmp_path: Path) -> None:
    (tmp_path / "repo" / "infra" / "routing").mkdir(parents=True)
    anchor = tmp_path / "repo" / "services" / "x" / "bootstrap.py"
    found = resolve_folder("infra/routing", "CAIRN_X_DIR", anchor, cwd=tmp_path / "repo" / "services")
    assert found == tmp_path / "repo" / "infra" / "routing"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert resolve_folder("infra/routing", "CAIRN_X_DIR", anchor, cwd=elsewhere) == found


def test_a_folder_found_nowhere_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"'no/such' \(CAIRN_X_DIR\) not found .* set CAIRN_X_DIR"):
        resolve_folder("no/such", "CAIRN_X_DIR", tmp_path / "mod.py", cwd=tmp_path)
