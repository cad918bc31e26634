"""`Catalogue` over the prompt store's and the model registry's HTTP APIs, called with the caller's key."""

from __future__ import annotations

from typing import Any

import httpx

from cairn_gateway.domain.errors import GatewayError, unavailable


class HttpCatalogue:
    """Reads `GET /prompts` of the prompt store and `GET /v1/models` of the evaluator (either may be unset or empty: nothing listed from it)."""

    def __init__(
        self, prompt_store_url: str | None, registry_url: str | None, timeout_s: float = 5.0
    ) -> None:
        self.prompt_store_url = prompt_store_url
        self.registry_url = registry_url
        self.timeout_s = timeout_s

    async def _get(self, base: str | None, path: str, authorization: str | None) -> list[dict[str, Any]]:
        if not base:
            return []
        headers = {"Authorization": authorization} if authorization else {}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                reply = await client.get(base.rstrip("/") + path, headers=headers)
        except httpx.HTTPError as exc:
            raise unavailable(f"{base}{path} is unreachable: {exc.__class__.__name__}") from None
        if reply.status_code in (401, 403):
            raise GatewayError(
                reply.status_code,
                f"{path}: {reply.json().get('detail', 'refused')}",
                "permission_error" if reply.status_code == 403 else "invalid_request_error",
                "insufficient_role" if reply.status_code == 403 else "invalid_api_key",
            )
        if reply.status_code != 200:
            raise unavailable(f"{base}{path} answered {reply.status_code}")
        found = reply.json()
        return found if isinstance(found, list) else []

    async def prompts(self, authorization: str | None) -> list[dict[str, Any]]:
        return await self._get(self.prompt_store_url, "/prompts", authorization)

    async def models(self, authorization: str | None) -> list[dict[str, Any]]:
        return await self._get(self.registry_url, "/v1/models", authorization)
