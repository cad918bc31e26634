"""Sources and text extraction: files and folders (text, Markdown, HTML, PDF), the Python docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn_retriever.adapters.sources import (
    FileSource,
    PydocTopicsSource,
    S3Source,
    extract_text,
    media_type_of,
    source_for,
)
from cairn_retriever.ports import DocumentRef

from .conftest import load_sibling

tiny_pdf = load_sibling("pdf_builder").tiny_pdf

HTML = b"""<!doctype html><html><head><title>Refunds</title><style>p { color: red }</style>
<script>var secret = "do not index";</script></head>
<body><h1>Refund policy</h1><p>Refunds take <b>five</b> business days.</p>
<ul><li>Keep the receipt.</li><li>Return within 30 days.</li></ul></body></html>"""


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text("Plain text about generators.\n\nSecond paragraph.")
    (tmp_path / "guide.md").write_text("# The Guide\n\nSome *markdown* text.")
    (tmp_path / "page.html").write_bytes(HTML)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "manual.pdf").write_bytes(
        tiny_pdf(["First page about yield.", "Second page."], "Manual")
    )
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD.txt").write_text("hidden")
    return tmp_path


def test_a_folder_lists_readable_files_in_order_and_skips_hidden_ones(docs: Path) -> None:
    refs = FileSource(docs).refs()
    assert [(Path(r.uri).name, r.media_type) for r in refs] == [
        ("guide.md", "text/markdown"),
        ("notes.txt", "text/plain"),
        ("page.html", "text/html"),
        ("manual.pdf", "application/pdf"),
    ]
    assert all(r.uri.startswith("file:///") for r in refs)


def test_a_single_file_and_its_bytes(docs: Path) -> None:
    source = FileSource(docs / "notes.txt")
    (ref,) = source.refs()
    assert ref.uri == (docs / "notes.txt").resolve().as_uri()
    assert source.read(ref) == (docs / "notes.txt").read_bytes()


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        FileSource(tmp_path / "nope").refs()


def test_every_kind_is_extracted(docs: Path) -> None:
    source = FileSource(docs)
    texts = {Path(r.uri).name: extract_text(r, source.read(r)) for r in source.refs()}
    assert texts["notes.txt"].text == "Plain text about generators.\n\nSecond paragraph."
    assert texts["notes.txt"].title == "notes.txt"
    assert texts["guide.md"].title == "The Guide"
    html = texts["page.html"]
    assert html.title == "Refunds"
    assert "Refunds take five business days." in html.text
    assert "Keep the receipt.\n\nReturn within 30 days." in html.text
    assert "secret" not in html.text
    assert "color" not in html.text
    pdf = texts["manual.pdf"]
    assert pdf.title == "Manual"
    assert pdf.text == "First page about yield.\n\nSecond page."


def test_a_broken_pdf_raises(tmp_path: Path) -> None:
    ref = DocumentRef("file:///x.pdf", "application/pdf")
    with pytest.raises(Exception):  # noqa: B017 - pypdf's own error types
        extract_text(ref, b"%PDF-1.4 this is not a pdf")


def test_unknown_media_types_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot extract"):
        extract_text(DocumentRef("file:///a.bin", "application/octet-stream"), b"")


def test_pydoc_topics_one_document_per_topic() -> None:
    from pydoc_data.topics import topics

    source = PydocTopicsSource()
    refs = source.refs()
    assert len(refs) == len(topics)
    yield_ref = next(r for r in refs if r.uri == "pydoc:topics/yield")
    assert yield_ref.title == "yield"
    assert source.read(yield_ref).decode() == topics["yield"]


def test_unknown_pydoc_topics_are_refused() -> None:
    with pytest.raises(KeyError, match="no-such-topic"):
        PydocTopicsSource(["no-such-topic"])


def test_source_for_names(docs: Path) -> None:
    assert isinstance(source_for(str(docs)), FileSource)
    assert source_for("pydoc:topics").describe() == "pydoc:topics"
    single = source_for("pydoc:topics/yield")
    assert [r.uri for r in single.refs()] == ["pydoc:topics/yield"]
    s3 = source_for("s3://bucket/some/prefix", s3=("127.0.0.1:1", "k", "s", False))
    assert isinstance(s3, S3Source)
    assert (s3.bucket, s3.prefix) == ("bucket", "some/prefix")
    with pytest.raises(ValueError, match="S3 settings"):
        source_for("s3://bucket/x")
    with pytest.raises(ValueError, match="pydoc"):
        source_for("pydoc:modules")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.TXT", "text/plain"),
        ("b.markdown", "text/markdown"),
        ("c.htm", "text/html"),
        ("d.pdf", "application/pdf"),
        ("e.docx", None),
    ],
)
def test_media_types(name: str, kind: str | None) -> None:
    assert media_type_of(name) == kind
