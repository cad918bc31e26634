"""The operator console: server-rendered pages over the services' APIs, served by the gateway at
`/console` (docs/console.md).

Operators log in with an API key; every page reads, and every action goes, through the audit,
safety, prompt store and registry APIs with that key, so each service's roles and tenant scope
apply as they do to the CLI. No JavaScript build: HTML forms, one stylesheet.
"""

from __future__ import annotations

import contextlib
from importlib.resources import files

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cairn_auth.domain.errors import AuthenticationError
from cairn_gateway.console.backends import Backends
from cairn_gateway.console.core import (
    PREFIX,
    SECURITY_HEADERS,
    Caller,
    Console,
    ConsoleError,
    LoginRequiredError,
)
from cairn_gateway.console.session import LOGIN_COOKIE, SessionSealer, new_token, same_token
from cairn_observability import get_logger
from cairn_observability.pricing import PriceTable

__all__ = ["Console", "add_console", "console_of"]

log = get_logger("cairn.gateway.console")


def _safe_next(value: str | None) -> str:
    """Where to go after logging in: a console path only (never another site)."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return PREFIX + "/requests"


def console_of(
    backends: Backends,
    *,
    secret: str | None,
    session_s: float = 8 * 3600,
    secure_cookie: bool = False,
    prices: PriceTable | None = None,
) -> Console:
    """The console's shared parts; without `secret` sessions are sealed under a random key; `prices`
    prices the cost chart (None: it shows tokens only)."""
    if not secret:
        log.warning(
            "console sessions use a random key",
            detail="set CAIRN_CONSOLE_SECRET so sessions survive restarts and work across replicas",
        )
    return Console(
        backends,
        SessionSealer.of_secret(secret),
        session_s=session_s,
        secure_cookie=secure_cookie,
        prices=prices,
    )


def add_console(app: FastAPI, console: Console) -> None:
    """Add the console's routes (`/console/...`) and its error pages to `app`."""
    from cairn_gateway.console import (
        pages_models,
        pages_operations,
        pages_prompts,
        pages_requests,
        pages_reviews,
    )

    router = console.router

    @app.exception_handler(LoginRequiredError)
    async def _login(_: Request, exc: LoginRequiredError) -> Response:
        return RedirectResponse(f"{PREFIX}/login?next={exc.next_path}", 303, headers=SECURITY_HEADERS)

    @app.exception_handler(ConsoleError)
    async def _error(request: Request, exc: ConsoleError) -> Response:
        caller = None
        with contextlib.suppress(LoginRequiredError):
            caller = await console.caller(request)
        return console.page("error.html", caller, request, exc.status, title=exc.title, detail=exc.detail)

    @router.get("", response_class=HTMLResponse)
    @router.get("/", response_class=HTMLResponse)
    async def home() -> Response:
        return RedirectResponse(PREFIX + "/requests", 303)

    @router.get("/console.css")
    async def stylesheet() -> Response:
        css = files("cairn_gateway.console").joinpath("templates/console.css").read_text(encoding="utf-8")
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    @router.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str | None = None, failed: str | None = None) -> Response:
        token = new_token()
        page = console.page(
            "login.html",
            None,
            request,
            401 if failed else 200,
            next=_safe_next(next),
            login_csrf=token,
            failed=bool(failed),
            auth_enabled=console.auth_enabled(request),
        )
        page.set_cookie(
            LOGIN_COOKIE, token, max_age=900, path=PREFIX, httponly=True, samesite="strict",
            secure=console.secure_cookie,
        )  # fmt: skip
        return page

    @router.post("/login")
    async def login(request: Request) -> Response:
        fields = await console.form(request, None)
        if not same_token(fields.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
            raise ConsoleError(403, "Refused", "the login form is stale; reload the page")
        key = fields.get("api_key", "").strip()
        target = _safe_next(fields.get("next"))
        try:
            principal = await console.principal_of(request, key or None)
        except AuthenticationError:
            log.info("console login refused")
            return RedirectResponse(f"{PREFIX}/login?failed=1&next={target}", 303, headers=SECURITY_HEADERS)
        log.info("console login", key_id=principal.key_id, tenant=principal.tenant, role=principal.role.value)
        response = RedirectResponse(target, 303, headers=SECURITY_HEADERS)
        console.start_session(response, key, new_token())
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    @router.post("/logout")
    async def logout(request: Request, caller: Caller = Depends(console.caller)) -> Response:
        await console.form(request, caller)
        response = RedirectResponse(f"{PREFIX}/login?next={PREFIX}/requests", 303, headers=SECURITY_HEADERS)
        console.end_session(response)
        return response

    for module in (pages_requests, pages_reviews, pages_prompts, pages_models, pages_operations):
        module.add_routes(console)
    app.include_router(router)
