"""FastAPI integration: `install_auth` on the app, `require(role)` on routes, 404 for other tenants.

```python
from cairn_auth.fastapi import Operator, Viewer, install_auth, require

install_auth(app, Authenticator(store))

@app.get("/tenants/{tenant}/prompts/{name}")
async def show(tenant: str, name: str, principal: Viewer) -> PromptOut:
    principal.check_tenant(tenant)           # another tenant's prompt: 404, as if it did not exist
    ...

@app.post("/prompts", dependencies=[Depends(require("operator"))])
async def push(...): ...
```

Refusals are JSON (`{"detail": ...}`) and never echo the presented key: 401 with
`WWW-Authenticate: Bearer` for a missing, malformed, unknown or revoked key, 403 for a role too
low, 404 for another tenant's resource. Keys come in `Authorization: Bearer <key>` or `X-API-Key`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from cairn_auth.authenticator import API_KEY_HEADER, Authenticator
from cairn_auth.domain.errors import AuthenticationError, InsufficientRoleError, TenantAccessError
from cairn_auth.domain.principals import PLATFORM_TENANT, Principal, Role
from cairn_auth.settings import AuthSettings

__all__ = [
    "ANONYMOUS_ADMIN",
    "Admin",
    "Operator",
    "Viewer",
    "install_auth",
    "not_found",
    "require",
]

ANONYMOUS_ADMIN = Principal(key_id="anonymous", tenant=PLATFORM_TENANT, role=Role.ADMIN, name="auth disabled")
"""Every caller, when `CAIRN_AUTH_ENABLED=false`."""

_STATE_AUTHENTICATOR = "cairn_authenticator"
_STATE_ENABLED = "cairn_auth_enabled"
_UNAUTHENTICATED = "a valid API key is required (Authorization: Bearer <key> or X-API-Key)"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_NOT_FOUND = "not found"

_bearer = HTTPBearer(auto_error=False, description="A Cairn API key: `cairn_<key_id>_<secret>`.")
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="A Cairn API key.")
_log = structlog.get_logger("cairn.auth")


def install_auth(
    app: FastAPI, authenticator: Authenticator | None, settings: AuthSettings | None = None
) -> None:
    """Put the authenticator on `app.state` and answer access errors raised in routes as 401/403/404.

    With `settings.enabled` false (`CAIRN_AUTH_ENABLED=false`) no key is asked for and every
    caller is `ANONYMOUS_ADMIN`; otherwise an authenticator is required.
    """
    enabled = (settings or AuthSettings()).enabled
    if enabled and authenticator is None:
        raise ValueError("access control is enabled but no authenticator was given")
    if not enabled:
        _log.warning("auth_disabled", detail="CAIRN_AUTH_ENABLED=false: every HTTP caller is an admin")
    setattr(app.state, _STATE_AUTHENTICATOR, authenticator)
    setattr(app.state, _STATE_ENABLED, enabled)
    app.add_exception_handler(AuthenticationError, _on_unauthenticated)
    app.add_exception_handler(InsufficientRoleError, _on_forbidden)
    app.add_exception_handler(TenantAccessError, _on_other_tenant)


async def _on_unauthenticated(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": _UNAUTHENTICATED}, status.HTTP_401_UNAUTHORIZED, headers=_CHALLENGE)


async def _on_forbidden(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status.HTTP_403_FORBIDDEN)


async def _on_other_tenant(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": _NOT_FOUND}, status.HTTP_404_NOT_FOUND)


def not_found() -> HTTPException:
    """The refusal for another tenant's resource: the same 404 a missing one gets."""
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=_NOT_FOUND)


def require(role: Role | str = Role.VIEWER) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency giving the caller's Principal when its key is valid and its role includes `role`.

    Answers 401 (with `WWW-Authenticate: Bearer`) when the key is missing or not valid, 403 when
    the role is too low. The principal is also left on `request.state.principal`.
    """
    needed = Role(role)

    async def principal_with_role(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        api_key: Annotated[str | None, Depends(_api_key)],
    ) -> Principal:
        state = request.app.state
        if not getattr(state, _STATE_ENABLED, True):
            principal = ANONYMOUS_ADMIN
        else:
            authenticator: Authenticator | None = getattr(state, _STATE_AUTHENTICATOR, None)
            if authenticator is None:
                raise RuntimeError("cairn_auth.fastapi.install_auth was not called on this app")
            presented = bearer.credentials if bearer is not None else api_key
            try:
                principal = await authenticator.authenticate(presented)
            except AuthenticationError as exc:
                _log.info("request_unauthenticated", path=request.url.path, reason=str(exc))
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED, detail=_UNAUTHENTICATED, headers=_CHALLENGE
                ) from None
        if not principal.allows(needed):
            _log.info("request_forbidden", path=request.url.path, key_id=principal.key_id, needs=needed.value)
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail=f"this action needs the {needed.value} role"
            )
        request.state.principal = principal
        return principal

    principal_with_role.__name__ = f"require_{needed.value}"
    return principal_with_role


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
"""A route parameter: the caller, at least a viewer."""
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
"""A route parameter: the caller, at least an operator."""
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
"""A route parameter: the caller, an admin."""
