"""Document sources (files and folders, S3 prefixes, the Python language reference) and text extraction
(plain text and Markdown as they are, HTML through BeautifulSoup, PDF through pypdf)."""

from __future__ import annotations

import io
import re
from pathlib import Path, PurePosixPath
from typing import Any

from cairn_retriever.ports import DocumentRef, DocumentSource, ExtractedText

MEDIA_TYPES = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".rst": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}
PYDOC_TOPICS = "pydoc:topics"


def media_type_of(name: str) -> str | None:
    """The media type of a file name by its extension; None for kinds the retriever does not read."""
    return MEDIA_TYPES.get(PurePosixPath(name).suffix.lower())


class FileSource:
    """One file, or every readable file under a folder (hidden folders skipped), as `file://` URIs."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return str(self.path)

    def refs(self) -> list[DocumentRef]:
        if not self.path.exists():
            raise FileNotFoundError(f"no such file or folder: {self.path}")
        if self.path.is_file():
            files = [self.path]
        else:
            files = sorted(
                p
                for p in self.path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.path).parts)
            )
        out = []
        for p in files:
            kind = media_type_of(p.name)
            if kind is not None:
                out.append(DocumentRef(p.resolve().as_uri(), kind, p.name))
        return out

    def read(self, ref: DocumentRef) -> bytes:
        from urllib.parse import unquote, urlsplit

        return Path(unquote(urlsplit(ref.uri).path)).read_bytes()


class S3Source:
    """Every readable object under `s3://bucket/prefix`, through the minio client."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    @classmethod
    def from_uri(cls, uri: str, endpoint: str, access_key: str, secret_key: str, secure: bool) -> S3Source:
        """A source for `s3://bucket/prefix` on an S3 endpoint."""
        from minio import Minio

        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"not an s3://bucket/prefix URI: {uri}")
        client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure)
        return cls(client, bucket, prefix)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def refs(self) -> list[DocumentRef]:
        out = []
        for obj in self.client.list_objects(self.bucket, prefix=self.prefix or None, recursive=True):
            name = obj.object_name
            kind = media_type_of(name)
            if kind is not None and not obj.is_dir:
                out.append(DocumentRef(f"s3://{self.bucket}/{name}", kind, PurePosixPath(name).name))
        return sorted(out, key=lambda r: r.uri)

    def read(self, ref: DocumentRef) -> bytes:
        key = ref.uri.removeprefix(f"s3://{self.bucket}/")
        response = self.client.get_object(self.bucket, key)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()


class PydocTopicsSource:
    """The Python language reference topics shipped with CPython (`pydoc_data.topics`): one document per
    topic, `pydoc:topics/<name>`."""

    def __init__(self, names: list[str] | None = None) -> None:
        from pydoc_data.topics import topics

        self.topics: dict[str, str] = topics
        if names is not None:
            unknown = sorted(set(names) - set(topics))
            if unknown:
                raise KeyError(f"unknown pydoc topics: {', '.join(unknown)}")
        self.names = sorted(topics) if names is None else list(names)

    def describe(self) -> str:
        return PYDOC_TOPICS if self.names == sorted(self.topics) else f"{PYDOC_TOPICS}/{','.join(self.names)}"

    def refs(self) -> list[DocumentRef]:
        return [DocumentRef(f"{PYDOC_TOPICS}/{name}", "text/plain", name) for name in self.names]

    def read(self, ref: DocumentRef) -> bytes:
        return self.topics[ref.uri.removeprefix(f"{PYDOC_TOPICS}/")].encode("utf-8")


def source_for(spec: str, *, s3: tuple[str, str, str, bool] | None = None) -> DocumentSource:
    """The source a command-line argument names: a path, `s3://bucket/prefix`, `pydoc:topics[/NAME]`.

    `s3` is (endpoint, access key, secret key, secure) for S3 sources.
    """
    if spec.startswith("s3://"):
        if s3 is None:
            raise ValueError("S3 settings are needed for an s3:// source")
        return S3Source.from_uri(spec, *s3)
    if spec == PYDOC_TOPICS:
        return PydocTopicsSource()
    if spec.startswith(PYDOC_TOPICS + "/"):
        return PydocTopicsSource([spec.removeprefix(PYDOC_TOPICS + "/")])
    if spec.startswith("pydoc:"):
        raise ValueError(f"unknown pydoc source {spec!r}: use {PYDOC_TOPICS} or {PYDOC_TOPICS}/NAME")
    return FileSource(Path(spec).expanduser())


def uri_prefix(source: DocumentSource) -> str:
    """The prefix every document URI of `source` starts with: what a scan of it may delete under."""
    if isinstance(source, FileSource):
        resolved = source.path.expanduser().resolve()
        return resolved.as_uri() if resolved.is_file() else resolved.as_uri().rstrip("/") + "/"
    if isinstance(source, S3Source):
        return f"s3://{source.bucket}/{source.prefix}"
    if isinstance(source, PydocTopicsSource) and source.names == sorted(source.topics):
        return f"{PYDOC_TOPICS}/"
    raise ValueError(f"{source.describe()} cannot be watched: use a folder, a file or an s3:// prefix")


# --- text extraction ---

_BLOCK_TAGS_TEXT = """p div section article main header footer aside nav li ul ol dl dt dd table tr td th thead tbody
blockquote pre figure figcaption h1 h2 h3 h4 h5 h6 hr br form fieldset details summary"""
_BLOCK_TAGS = _BLOCK_TAGS_TEXT.split()
_SPACES = re.compile(r"[ \t\f\v\r]+")
_BLANK_RUNS = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")


def _decode(data: bytes) -> str:
    return data.decode("utf-8-sig", errors="replace")


def _tidy(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def html_text(data: bytes) -> ExtractedText:
    """Visible text of an HTML page: scripts and styles dropped, block elements on their own paragraphs."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for tag in soup(["script", "style", "noscript", "template", "head", "svg"]):
        tag.decompose()
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    return ExtractedText(_tidy(soup.get_text("")), title or None)


def pdf_text(data: bytes) -> ExtractedText:
    """Text of every page of a PDF, pages separated as paragraphs."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    pages = [(page.extract_text() or "").strip() for page in reader.pages]
    title = reader.metadata.title if reader.metadata and reader.metadata.title else None
    return ExtractedText("\n\n".join(p for p in pages if p), title)


def markdown_title(text: str) -> str | None:
    """The first level-one heading of a Markdown text."""
    found = re.search(r"^#[ \t]+(.+?)[ \t#]*$", text, re.MULTILINE)
    return found.group(1).strip() if found else None


def extract_text(ref: DocumentRef, data: bytes) -> ExtractedText:
    """The text of a document by its media type; ValueError for a kind the retriever cannot read."""
    if ref.media_type == "text/html":
        found = html_text(data)
    elif ref.media_type == "application/pdf":
        found = pdf_text(data)
    elif ref.media_type == "text/markdown":
        text = _decode(data)
        found = ExtractedText(text, markdown_title(text))
    elif ref.media_type == "text/plain":
        found = ExtractedText(_decode(data))
    else:
        raise ValueError(f"cannot extract text from {ref.media_type}")
    return ExtractedText(found.text, found.title or ref.title)


class InlineSource:
    """One document uploaded with its text (the HTTP API's `POST /v1/documents`), under the URI given."""

    def __init__(self, uri: str, text: str, media_type: str, title: str | None = None) -> None:
        self.ref = DocumentRef(uri, media_type, title)
        self.data = text.encode("utf-8")

    def describe(self) -> str:
        return self.ref.uri

    def refs(self) -> list[DocumentRef]:
        return [self.ref]

    def read(self, ref: DocumentRef) -> bytes:
        if ref != self.ref:
            raise KeyError(ref.uri)
        return self.data
