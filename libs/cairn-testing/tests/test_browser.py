"""`cairn_testing.browser` against a real headless Chromium and a tiny local HTTP server.

Chromium and chromedriver are installed by `make browser` (`make test` runs it): without them these tests
fail, they do not skip.
"""

from __future__ import annotations

import html
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from cairn_testing import browser
from cairn_testing.browser import BrowserUnavailableError, chrome, fill, screenshot, wait_for

FORM = b"""<!doctype html><title>Notes</title>
<form method="post" action="/notes"><input id="note" name="note"><button id="save" type="submit">Save</button></form>
"""


class _NotesHandler(BaseHTTPRequestHandler):
    """GET / answers a form; POST /notes records the note and answers a page showing it."""

    server: _NotesServer

    def do_GET(self) -> None:
        self._answer(FORM)

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        note = parse_qs(self.rfile.read(length).decode())["note"][0]
        self.server.posted.append(note)
        self._answer(
            f'<!doctype html><title>Saved</title><p id="saved">Saved: {html.escape(note)}</p>'.encode()
        )

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet: no request lines on stderr
        pass


class _NotesServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _NotesHandler)
        self.posted: list[str] = []


@pytest.fixture
def notes_server() -> Iterator[_NotesServer]:
    server = _NotesServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_a_form_is_filled_submitted_and_its_answer_read(notes_server: _NotesServer, tmp_path: Path) -> None:
    note = "ship <it> & smile"
    with chrome(window=(1024, 700)) as driver:
        driver.get(f"http://127.0.0.1:{notes_server.server_port}/")
        fill(driver, "#note", note)
        wait_for(driver, "#save").click()
        saved = wait_for(driver, "#saved")

        assert saved.text == f"Saved: {note}"
        assert driver.title == "Saved"
        assert notes_server.posted == [note]
        shot = screenshot(driver, tmp_path / "shots" / "saved.png")

    assert shot == tmp_path / "shots" / "saved.png"
    width, height = _png_size(shot.read_bytes())
    assert width == 1024
    assert 0 < height <= 700


def test_fill_replaces_what_the_input_held(notes_server: _NotesServer) -> None:
    with chrome() as driver:
        driver.get(f"http://127.0.0.1:{notes_server.server_port}/")
        fill(driver, "#note", "first")
        element = fill(driver, "#note", "second")

        assert element.get_attribute("value") == "second"


def test_a_missing_browser_says_to_run_make_browser(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "chromium")

    with pytest.raises(BrowserUnavailableError, match="run `make browser`"), chrome():
        pass
