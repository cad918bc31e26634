"""The OpenAI-compatible HTTP API (FastAPI; OpenAPI docs at /docs).

| route | who |
|---|---|
| `POST /v1/chat/completions` | viewer or above (`create_app(completion_role=...)`), for the key's tenant; `stream: true` answers with server-sent events (`streams.py`) |
| `GET /v1/models` | viewer or above: the prompts and registry models the key can read |
| `GET /health` | anyone |
| `/console/...` | the operator console (`console/`): a login with an API key, then pages over the services' APIs |

The request's tenant is the key's. A platform-wide key (`*`) names the tenant in `X-Cairn-Tenant`
(default `default`); a tenant-bound key naming another tenant there is refused (403). Every error is
OpenAI's `{"error": {"message", "type", "param", "code"}}`; docs/gateway.md lists them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from cairn_auth import Authenticator, AuthSettings, Principal, Role
from cairn_auth.domain import PLATFORM_TENANT
from cairn_auth.domain.principals import check_tenant_id
from cairn_auth.fastapi import install_auth, require
from cairn_bus import TransientError
from cairn_gateway.completions import Reply, Submission, complete, submit
from cairn_gateway.deps import Deps
from cairn_gateway.domain.chat import ChatCompletionRequest
from cairn_gateway.domain.errors import (
    REQUEST_ID_HEADER,
    GatewayError,
    forbidden,
    invalid_request,
    unauthorized,
    unavailable,
)
from cairn_gateway.domain.models import model_list
from cairn_gateway.streams import stream_completion
from cairn_observability import extract_trace_context, get_logger, get_tracer
from cairn_observability.metrics import GATEWAY_REQUEST_SECONDS, GATEWAY_REQUESTS, GATEWAY_STREAMS

__all__ = ["TENANT_HEADER", "create_app"]

TENANT_HEADER = "X-Cairn-Tenant"
log = get_logger("cairn.gateway.api")
_tracer = get_tracer("cairn.gateway")


def _route(request: Request) -> str:
    return request.url.path if request.url.path in ("/v1/chat/completions", "/v1/models") else "other"


def _observe(request: Request, status: int, outcome: str) -> None:
    route = _route(request)
    GATEWAY_REQUESTS.labels(route, str(status), outcome).inc()
    started = getattr(request.state, "started", None)
    if started is not None:
        GATEWAY_REQUEST_SECONDS.labels(route, str(status)).observe(time.monotonic() - started)


def _error_response(request: Request, error: GatewayError) -> JSONResponse:
    _observe(request, error.status, error.outcome)
    log.info("request refused", status=error.status, code=error.code, request_id=error.request_id)
    return JSONResponse(error.body(), error.status, headers=error.headers())


def request_tenant(principal: Principal, asked: str | None) -> str:
    """The tenant a request is made for: the key's; a platform-wide key's `X-Cairn-Tenant` (default
    `default`). 403 when a tenant-bound key asks for another tenant, 400 for an invalid tenant id."""
    if not principal.platform_wide:
        if asked is not None and asked != principal.tenant:
            raise forbidden(f"this key belongs to tenant {principal.tenant!r}, not {asked!r}")
        return principal.tenant
    tenant = asked or "default"
    try:
        check_tenant_id(tenant, allow_platform=False)
    except ValueError as exc:
        raise invalid_request(str(exc), param=TENANT_HEADER) from None
    if tenant == PLATFORM_TENANT:
        raise invalid_request("a request belongs to one tenant, not `*`", param=TENANT_HEADER)
    return tenant


def create_app(
    deps: Deps,
    *,
    authenticator: Authenticator | None,
    auth: AuthSettings | None = None,
    completion_role: Role = Role.VIEWER,
) -> FastAPI:
    """The gateway's API on `deps`; `authenticator` may be None only when `auth.enabled` is false."""
    app = FastAPI(
        title="Cairn gateway",
        version="1",
        description="OpenAI-compatible chat completions over Cairn's request path.",
    )
    install_auth(app, authenticator, auth)
    asker = require(completion_role)
    reader = require(Role.VIEWER)

    @app.middleware("http")
    async def _timed(request: Request, call_next: Any) -> Any:
        request.state.started = time.monotonic()
        return await call_next(request)

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return _error_response(request, exc)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == 401:
            return _error_response(request, unauthorized(detail))
        if exc.status_code == 403:
            return _error_response(request, forbidden(detail))
        error = GatewayError(exc.status_code, detail, "invalid_request_error", None, outcome="invalid")
        return _error_response(request, error)

    @app.exception_handler(TransientError)
    async def _outage(request: Request, exc: TransientError) -> JSONResponse:
        log.warning("dependency unavailable", error=str(exc))
        return _error_response(request, unavailable("the gateway's database is unavailable; retry later"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed in the gateway", error=repr(exc))
        error = GatewayError(500, "the gateway failed to answer", "server_error", "internal_error")
        return _error_response(request, error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(loc) or None
        return _error_response(request, invalid_request(f"{param or 'body'}: {first['msg']}", param=param))

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness (no key needed)."""
        return {"status": "ok"}

    @app.post(
        "/v1/chat/completions",
        summary="Create a chat completion (OpenAI-compatible)",
        dependencies=[Depends(asker)],
    )
    async def chat_completions(
        request: Request,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
        tenant: Annotated[str | None, Header(alias=TENANT_HEADER)] = None,
    ) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            raise invalid_request("the body is not JSON") from None
        try:
            body = ChatCompletionRequest.model_validate(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first["loc"]) or None
            raise invalid_request(f"{param or 'body'}: {first['msg']}", param=param) from None
        principal: Principal = request.state.principal
        for_tenant = request_tenant(principal, tenant)
        carrier = {k: v for k, v in request.headers.items() if k in ("traceparent", "tracestate")}
        with _tracer.start_as_current_span(
            "POST /v1/chat/completions", context=extract_trace_context(carrier), kind=SpanKind.SERVER
        ) as span:
            span.set_attribute("cairn.tenant", for_tenant)
            span.set_attribute("gen_ai.request.model", body.model)
            if body.stream:  # the span covers the submission; the stream outlives it
                submitted = await submit(body, for_tenant, idempotency_key, deps)
                span.set_attribute("cairn.request_id", submitted.request_id)
                return await _streamed(request, submitted, body, for_tenant)
            reply = await complete(body, for_tenant, idempotency_key, deps)
            span.set_attribute("cairn.request_id", reply.request_id)
            span.set_attribute("http.response.status_code", reply.status)
        _observe(request, reply.status, reply.outcome)
        log.info("request answered", request_id=reply.request_id, status=reply.status, outcome=reply.outcome)
        return JSONResponse(reply.body, reply.status, headers=reply.headers())

    async def _streamed(
        request: Request, submitted: Submission | Reply, body: ChatCompletionRequest, tenant: str
    ) -> Response:
        """A `text/event-stream` of the answer; JSON when it is refused before the stream starts."""

        def ended(outcome: str) -> None:
            GATEWAY_STREAMS.labels(outcome).inc()
            _observe(request, 200, outcome)

        items = stream_completion(submitted, body, tenant, deps, ended)
        first = await anext(items)
        if isinstance(first, Reply):
            await items.aclose()
            _observe(request, first.status, first.outcome)
            log.info(
                "request answered", request_id=first.request_id, status=first.status, outcome=first.outcome
            )
            return JSONResponse(first.body, first.status, headers=first.headers())

        async def relay() -> AsyncIterator[bytes]:
            yield first
            async for item in items:
                if isinstance(item, bytes):
                    yield item

        headers = {
            REQUEST_ID_HEADER: submitted.request_id,
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
        return StreamingResponse(relay(), media_type="text/event-stream", headers=headers)

    @app.get(
        "/v1/models",
        summary="What can be asked for (OpenAI-compatible list)",
        dependencies=[Depends(reader)],
    )
    async def list_models(request: Request) -> JSONResponse:
        authorization = request.headers.get("authorization")
        prompts = await deps.catalogue.prompts(authorization)
        models = await deps.catalogue.models(authorization)
        body = model_list(prompts, models, deps.default_prompt)
        _observe(request, 200, "listed")
        return JSONResponse(body)

    if deps.console is not None:
        from cairn_gateway.console import add_console

        add_console(app, deps.console)
    return app
