"""The services' HTTP APIs the console reads and acts through, called with the operator's own key.

The console keeps no data of its own: every page is a view over the audit, safety, prompt store and
registry (evaluator) APIs, and every action is one of their routes, so each service still decides
what the key may see and do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["API_NAMES", "BackendError", "Backends"]

API_NAMES = {
    "audit": "audit",
    "safety": "safety",
    "prompts": "prompt store",
    "registry": "model registry (evaluator)",
}


class BackendError(Exception):
    """A service API refused or failed: its HTTP status (0: unreachable or not configured) and why."""

    def __init__(self, api: str, status: int, detail: str) -> None:
        super().__init__(f"{API_NAMES.get(api, api)}: {detail}")
        self.api = api
        self.status = status
        self.detail = detail


def _detail(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.text[:200] or reply.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's validation errors
        return "; ".join(str(d.get("msg", d)) for d in detail if isinstance(d, dict)) or "invalid"
    return str(detail or reply.reason_phrase)


@dataclass
class Backends:
    """Base URLs of the services' APIs (None or empty: not configured) and one shared HTTP client."""

    urls: dict[str, str | None]
    timeout_s: float = 10.0
    _client: httpx.AsyncClient | None = field(default=None, repr=False)

    def configured(self, api: str) -> bool:
        return bool(self.urls.get(api))

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def call(
        self,
        api: str,
        method: str,
        path: str,
        key: str | None,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        text: bool = False,
    ) -> Any:
        """The JSON (or, with `text`, the text) answer of `method path` on `api`; BackendError when
        the API is not configured, unreachable, or answers anything but 2xx."""
        base = self.urls.get(api)
        if not base:
            raise BackendError(api, 0, "not configured for the console")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            reply = await self.client().request(
                method, base.rstrip("/") + path, params=query, json=json, headers=headers
            )
        except httpx.HTTPError as exc:
            raise BackendError(api, 0, f"unreachable ({exc.__class__.__name__})") from None
        if not 200 <= reply.status_code < 300:
            raise BackendError(api, reply.status_code, _detail(reply))
        return reply.text if text else reply.json()

    async def get(self, api: str, path: str, key: str | None, **params: Any) -> Any:
        return await self.call(api, "GET", path, key, params=params)

    async def post(self, api: str, path: str, key: str | None, body: Any = None) -> Any:
        return await self.call(api, "POST", path, key, json=body if body is not None else {})
