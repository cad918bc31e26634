"""Reading what can still be read from a request that could not be decoded."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from cairn_events.base import ID_PATTERN

_ID = re.compile(ID_PATTERN)
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class UnreadableRequest:
    """The request id and tenant of a request whose record was dead-lettered."""

    request_id: str
    tenant: str


def salvage_request(value: bytes | None) -> UnreadableRequest | None:
    """The request id (and tenant) of a broken request record, when its bytes still name one.

    Needs a JSON object with a string `request_id` matching the id pattern; the tenant is the
    payload's non-empty string `tenant`, else `default`.
    """
    if not value:
        return None
    try:
        payload = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    request_id = payload.get("request_id")
    if not isinstance(request_id, str) or not _ID.fullmatch(request_id):
        return None
    tenant = payload.get("tenant")
    return UnreadableRequest(
        request_id, tenant if isinstance(tenant, str) and tenant.strip() else DEFAULT_TENANT
    )
