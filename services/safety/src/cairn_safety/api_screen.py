"""`POST /v1/screen`: screening as a service (added to the review and policy API by `api.create_app`).

A batch of texts is screened under a tenant's policy exactly as the event path screens a request's
user turn (`input`) or a model's answer (`output`): the same `Screener` and the same policy files,
each text on its own (`batch_screening`). Nothing is recorded or published; each text is counted
in `cairn_safety_api_screenings_total` (stage, verdict, policy).

Role: viewer. Screening reads the tenant's policy (which a viewer may read with
`GET /v1/policies/{tenant}`) and changes nothing. The policy is the caller's tenant's; `tenant` in
the body names another one only for platform (`*`) admins (any other tenant is 404, as for
`GET /v1/policies/{tenant}`); a platform admin that names none gets the default policy.

The answer never carries a screened text back, except a `redact` verdict's text with its personal
data replaced; validation errors (422) on this route leave the offending input out as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from cairn_auth.domain.principals import TENANT_PATTERN
from cairn_auth.fastapi import Viewer
from cairn_events import SafetyFinding, Verdict
from cairn_observability import get_logger
from cairn_observability.metrics import SAFETY_API_SCREENINGS
from cairn_safety.batch_screening import VERDICT_ORDER, TextScreening, screen_each
from cairn_safety.domain.policy import Policy, Stage
from cairn_safety.screening import Screener

__all__ = [
    "MAX_TEXTS",
    "MAX_TEXT_CHARS",
    "SCREEN_PATH",
    "ScreenIn",
    "ScreenOut",
    "SkippedCheckOut",
    "TextScreenedOut",
    "add_screen_routes",
]

SCREEN_PATH = "/v1/screen"
MAX_TEXTS = 256
"""The most texts one request screens."""
MAX_TEXT_CHARS = 32000
"""The longest text screened, in characters: the longest answer a reviewer may write (`DecisionIn`)."""

log = get_logger("cairn.safety.api")


class ScreenIn(BaseModel):
    """Texts to screen under one tenant's policy, all at the same stage."""

    model_config = ConfigDict(extra="forbid")

    texts: list[Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]] = Field(
        min_length=1,
        max_length=MAX_TEXTS,
        description=f"The texts, each screened on its own (1 to {MAX_TEXTS}, each at most "
        f"{MAX_TEXT_CHARS} characters).",
    )
    stage: Stage = Field(
        "input", description="`input` (screened as a user's turn) or `output` (as a model's answer)."
    )
    tenant: str | None = Field(
        None,
        pattern=TENANT_PATTERN,
        description="Whose policy applies: yours by default; another tenant's for platform admins only.",
    )


class SkippedCheckOut(BaseModel):
    """A check the policy asks for that could not judge the text."""

    model_config = ConfigDict(frozen=True)

    check: str = Field(description="The check, e.g. `groundedness`.")
    reason: str = Field(description="Why it could not judge.")


class TextScreenedOut(BaseModel):
    """One text's verdict."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(description="The text's position in `texts` (from 0).")
    verdict: Verdict = Field(description="allow, redact, review or block.")
    reason: str = Field(description="Which checks decided the verdict, with scores and thresholds.")
    findings: list[SafetyFinding] = Field(description="Every check's finding (never the text itself).")
    policy: str = Field(description="The policy that decided, `name@version`.")
    redacted: str | None = Field(
        description="For `redact`: the text with the personal data that fired replaced, as it would be "
        "passed on; null otherwise."
    )
    skipped: list[SkippedCheckOut] = Field(
        description="Checks the policy asks for that could not run: on output, `groundedness` (no "
        "retrieved context to judge the answer against)."
    )
    elapsed_ms: float = Field(description="How long screening the text took, in milliseconds.")

    @classmethod
    def of(cls, index: int, done: TextScreening) -> TextScreenedOut:
        decision = done.decision
        return cls(
            index=index,
            verdict=decision.verdict,
            reason=decision.reason(),
            findings=decision.findings,
            policy=decision.policy,
            redacted=done.passed_on if decision.verdict is Verdict.REDACT else None,
            skipped=[SkippedCheckOut(check=s.check, reason=s.reason) for s in done.skipped],
            elapsed_ms=round(done.seconds * 1000, 3),
        )


class ScreenOut(BaseModel):
    """The verdict on each text, in the order given."""

    model_config = ConfigDict(frozen=True)

    tenant: str = Field(description="The tenant whose policy applied.")
    stage: Stage = Field(description="The stage screened.")
    policy: str = Field(description="The policy that applied, `name@version`.")
    results: list[TextScreenedOut] = Field(description="One result per text, in the order of `texts`.")
    counts: dict[str, int] = Field(description="How many texts got each verdict.")
    elapsed_ms: float = Field(description="How long screening the batch took, in milliseconds.")


async def _validation_error(request: Request, exc: Exception) -> Response:
    """422 as FastAPI words it, without echoing the input on the screening route (it may be a secret)."""
    assert isinstance(exc, RequestValidationError)
    if request.url.path != SCREEN_PATH:
        return await request_validation_exception_handler(request, exc)
    errors = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status.HTTP_422_UNPROCESSABLE_CONTENT)


def add_screen_routes(
    app: FastAPI, screener: Screener | None, policy_for: Callable[[str], Policy], default: str
) -> None:
    """Add `POST /v1/screen` to the API: `policy_for(tenant)` gives a tenant's policy (503 when the
    policies cannot be loaded), `default` names the policy a platform admin gets without a tenant.
    Without a `screener` the route answers 503."""
    app.add_exception_handler(RequestValidationError, _validation_error)

    @app.post(SCREEN_PATH, summary="Screen texts under a tenant's policy, as the event path would")
    async def screen(body: ScreenIn, principal: Viewer) -> ScreenOut:
        if body.tenant is not None:
            principal.check_tenant(body.tenant)  # another tenant: 404, as for its policy
            tenant = body.tenant
        else:
            tenant = default if principal.platform_wide else principal.tenant
        if screener is None:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, detail="screening is not served by this API"
            )
        policy = policy_for(tenant)
        started = time.perf_counter()
        results: list[TextScreenedOut] = []
        async for done in screen_each(screener, body.stage, policy, body.texts):
            results.append(TextScreenedOut.of(len(results), done))
            SAFETY_API_SCREENINGS.labels(body.stage, done.decision.verdict.value, done.decision.policy).inc()
        counts = {v.value: sum(r.verdict is v for r in results) for v in VERDICT_ORDER}
        elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
        log.info(
            "texts screened",
            tenant=tenant,
            stage=body.stage,
            policy=policy.ref,
            texts=len(results),
            by=principal.key_id,
            **counts,
        )
        return ScreenOut(
            tenant=tenant,
            stage=body.stage,
            policy=policy.ref,
            results=results,
            counts=counts,
            elapsed_ms=elapsed_ms,
        )
