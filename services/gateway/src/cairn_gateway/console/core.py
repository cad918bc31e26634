"""What every console page shares: the caller from the session cookie, CSRF-checked forms, rendering
and the error page. Page modules (`pages_*.py`) add their routes with `Console.router`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from cairn_auth import Authenticator, Principal, Role
from cairn_auth.domain.errors import AuthenticationError
from cairn_auth.fastapi import ANONYMOUS_ADMIN
from cairn_gateway.console.backends import BackendError, Backends
from cairn_gateway.console.session import COOKIE, Session, SessionSealer, same_token
from cairn_observability.pricing import PriceTable

__all__ = ["PREFIX", "Caller", "Console", "ConsoleError", "LoginRequiredError"]

PREFIX = "/console"
NAV = (
    ("requests", "Requests"),
    ("reviews", "Reviews"),
    ("prompts", "Prompts"),
    ("models", "Models"),
    ("datasets", "Datasets & tuning"),
    ("alerts", "Alerts"),
    ("charts", "Quality & cost"),
)
NOTICES = {
    "approved": "The item was approved: the held answer is released.",
    "edited": "The edit was recorded: the corrected answer is screened again and released.",
    "rejected": "The item was rejected: the request is answered blocked.",
    "promoted": "The version was moved.",
    "rolled-back": "The previous production version is back.",
    "unchanged": "The version was at that stage already: nothing changed.",
    "logged-out": "You are logged out.",
}


class LoginRequiredError(Exception):
    """No valid session: the browser is sent to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class ConsoleError(Exception):
    """A page that cannot be shown or an action that was refused: the error page, with `status`."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


@dataclass(frozen=True)
class Caller:
    """The operator behind a console request."""

    principal: Principal
    key: str | None
    """The API key the services are called with (None when access control is off)."""
    csrf: str

    def can(self, role: Role | str) -> bool:
        return self.principal.allows(role)

    def require(self, role: Role | str, what: str) -> None:
        if not self.can(role):
            raise ConsoleError(403, "Not allowed", f"{what} needs the {Role(role).value} role")


def _fmt_time(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "" if value is None else str(value)


def _fmt_number(value: Any, digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


class Console:
    """The console's shared parts, built once per app."""

    def __init__(
        self,
        backends: Backends,
        sealer: SessionSealer,
        *,
        session_s: float,
        secure_cookie: bool,
        prices: PriceTable | None = None,
    ) -> None:
        self.backends = backends
        self.prices = prices
        """What the charts price tokens with; None: they show tokens only."""
        self.sealer = sealer
        self.session_s = session_s
        self.secure_cookie = secure_cookie
        self.router = APIRouter(prefix=PREFIX, include_in_schema=False)
        self.templates = Environment(
            loader=PackageLoader("cairn_gateway", "console/templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["when"] = _fmt_time
        self.templates.filters["num"] = _fmt_number
        self.templates.filters["q"] = lambda v: quote(str(v), safe="")

    # -- sessions -------------------------------------------------------------------------------

    @staticmethod
    def auth_enabled(request: Request) -> bool:
        """Whether the app checks keys (`CAIRN_AUTH_ENABLED`, set by `install_auth`)."""
        return bool(getattr(request.app.state, "cairn_auth_enabled", True))

    async def principal_of(self, request: Request, key: str | None) -> Principal:
        """The principal of `key` (AuthenticationError when it is not valid)."""
        if not self.auth_enabled(request):
            return ANONYMOUS_ADMIN
        authenticator: Authenticator | None = getattr(request.app.state, "cairn_authenticator", None)
        if authenticator is None:
            raise RuntimeError("the console needs the app's authenticator (install_auth)")
        return await authenticator.authenticate(key)

    async def caller(self, request: Request) -> Caller:
        """The caller of a console page; LoginRequiredError without a valid session (a revoked key ends it once the authenticator's cache forgets it)."""
        session = self.sealer.open(request.cookies.get(COOKIE))
        if session is None:
            raise LoginRequiredError(
                request.url.path + (f"?{request.url.query}" if request.url.query else "")
            )
        try:
            principal = await self.principal_of(request, session.api_key or None)
        except AuthenticationError:
            raise LoginRequiredError(request.url.path) from None
        return Caller(principal, session.api_key or None, session.csrf)

    def start_session(self, response: Response, api_key: str, csrf: str) -> None:
        session = Session(api_key, csrf, time.time() + self.session_s)
        response.set_cookie(
            COOKIE,
            self.sealer.seal(session),
            max_age=int(self.session_s),
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=self.secure_cookie,
        )

    def end_session(self, response: Response) -> None:
        response.delete_cookie(
            COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=self.secure_cookie
        )

    # -- forms ----------------------------------------------------------------------------------

    @staticmethod
    def check_origin(request: Request) -> None:
        """Refuse a POST sent from another site (its `Origin`, or `Referer`, names another host)."""
        origin = request.headers.get("origin") or request.headers.get("referer")
        host = request.headers.get("host", request.url.netloc)
        if origin and origin != "null" and urlsplit(origin).netloc != host:
            raise ConsoleError(403, "Refused", "the form was sent from another site")

    async def form(self, request: Request, caller: Caller | None) -> dict[str, str]:
        """The posted form's fields (urlencoded), after the CSRF checks: the same origin and, with a
        session, the session's token in the `csrf` field."""
        self.check_origin(request)
        body = (await request.body()).decode("utf-8", errors="replace")
        fields = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
        if caller is not None and not same_token(fields.get("csrf"), caller.csrf):
            raise ConsoleError(403, "Refused", "the form's CSRF token is missing or stale; reload the page")
        return fields

    # -- pages ----------------------------------------------------------------------------------

    def page(
        self,
        template: str,
        caller: Caller | None,
        request: Request,
        http_status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        notice = NOTICES.get(request.query_params.get("notice", ""))
        html = self.templates.get_template(template).render(
            caller=caller,
            nav=NAV,
            prefix=PREFIX,
            notice=notice,
            path=request.url.path,
            Role=Role,
            **context,
        )
        return HTMLResponse(html, http_status, headers=SECURITY_HEADERS)

    async def call(self, caller: Caller, api: str, method: str, path: str, **kwargs: Any) -> Any:
        """A service API call for a page; its refusals become the error page."""
        try:
            return await self.backends.call(api, method, path, caller.key, **kwargs)
        except BackendError as exc:
            raise ConsoleError(
                exc.status if exc.status in (400, 403, 404, 409, 422) else 502,
                {403: "Not allowed", 404: "Not found", 409: "Conflict"}.get(exc.status, "Unavailable"),
                str(exc),
            ) from None

    async def get(self, caller: Caller, api: str, path: str, **params: Any) -> Any:
        return await self.call(caller, api, "GET", path, params=params)

    async def post(self, caller: Caller, api: str, path: str, body: Mapping[str, Any]) -> Any:
        return await self.call(caller, api, "POST", path, json=dict(body))

    @staticmethod
    def redirect(path: str, notice: str | None = None) -> RedirectResponse:
        target = PREFIX + path + (("&" if "?" in path else "?") + f"notice={notice}" if notice else "")
        return RedirectResponse(target, 303, headers=SECURITY_HEADERS)


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
