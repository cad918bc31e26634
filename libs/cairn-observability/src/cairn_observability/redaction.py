"""Keeping secrets out of log lines: a registry of known secret values and the redaction of them
and of secret-shaped text (Cairn API keys, passwords in URLs, bearer tokens).

`cairn_auth.secrets` registers every secret it reads here; `configure_logging` puts the structlog
processor `redact_secrets` before the renderer, so no line of any service shows a registered value.
It lives in cairn-observability (not cairn-auth, which re-exports it) because cairn-auth depends on
cairn-bus, which depends on this library.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "RedactingFilter",
    "forget_secrets",
    "redact",
    "redact_secrets",
    "register_secret",
]

REDACTED = "[REDACTED]"
"""What a secret is replaced with."""

MIN_SECRET_LENGTH = 4
"""Shorter values are not registered: redacting every `abc` in every log line would hide more than secrets."""


# --- the registry of known secret values -------------------------------------------------------

_lock = threading.Lock()
_registered: set[str] = set()
_registered_re: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Remember a secret value so that `redact` hides it wherever it appears."""
    global _registered_re
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        if value in _registered:
            return
        _registered.add(value)
        alternatives = sorted(_registered, key=len, reverse=True)  # longest first: no partial leftovers
        _registered_re = re.compile("|".join(re.escape(v) for v in alternatives))


def forget_secrets() -> None:
    """Forget every registered value (for tests)."""
    global _registered_re
    with _lock:
        _registered.clear()
        _registered_re = None


_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # API keys: the id stays (it is public and names the key), the secret goes.
    (re.compile(r"\bcairn_([0-9a-f]{12})_[A-Za-z0-9_-]{16,}"), rf"cairn_\1_{REDACTED}"),
    # user:password@ in any URL (postgresql://, redis://, https://, ...).
    (re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]*:)[^\s@/]+@"), rf"\1{REDACTED}@"),
    # Bearer tokens, e.g. an Authorization header printed whole.
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+"), rf"\1{REDACTED}"),
)


def redact(text: str) -> str:
    """`text` with registered secrets, API keys, URL passwords and bearer tokens replaced by `[REDACTED]`."""
    pattern = _registered_re
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    for regex, replacement in _PATTERNS:
        text = regex.sub(replacement, text)
    return text


# --- structlog and logging ---------------------------------------------------------------------

_SENSITIVE_KEY = re.compile(
    r"(?i)^(?:.*[_.-])?(?:password|passwd|secret|api[_-]?key|private[_-]?key|credentials?)$"
    r"|^(?:authorization|x-api-key|token|access[_-]token|refresh[_-]token|vault[_-]token)$"
)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float | type(None)):
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _SENSITIVE_KEY.match(k) and v is not None else _scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(_scrub(v) for v in value)
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}")
    text = repr(value)  # an object the renderer would print: only replaced when it shows a secret
    cleaned = redact(text)
    return value if cleaned == text else cleaned


def redact_secrets(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: every value of the event dict with secrets redacted (keys like `password` wholly).

    Put it after `format_exc_info` and before the renderer. An `exc_info` still in the dict is
    formatted here first, so tracebacks are redacted too.
    """
    if event_dict.get("exc_info"):
        event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
    for key in list(event_dict):
        value = event_dict[key]
        event_dict[key] = REDACTED if _SENSITIVE_KEY.match(key) and value is not None else _scrub(value)
    return event_dict


class RedactingFilter(logging.Filter):
    """A `logging` filter that redacts the message and traceback of every record (for stdlib loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
