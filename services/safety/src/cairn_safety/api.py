"""The review queue, policy and screening HTTP API (FastAPI; OpenAPI docs at /docs). Every route needs an
API key.

| route | role | tenant scope |
|---|---|---|
| `GET /v1/reviews?status=&tenant=&limit=` | viewer | the caller's tenant (platform admins: every tenant, or `tenant=`) |
| `GET /v1/reviews/{id}` | viewer | another tenant's item is 404, like a missing one |
| `POST /v1/reviews/{id}/decision` | operator | approve, edit (with `text`) or reject; the reviewer recorded is the caller's key id |
| `GET /v1/policies` | viewer | the policy that applies to the caller's tenant (platform admins: every policy) |
| `GET /v1/policies/{tenant}` | viewer | the tenant's policy, or the default one it falls back to |
| `PUT /v1/policies/{tenant}` | admin | the caller's tenant; the default policy only by platform admins |
| `POST /v1/screen` | viewer | the caller's tenant's policy; platform admins: `tenant` in the body (see `api_screen`) |

A decision is published as `cairn.review.resolved.v1` in the transaction that records it (when it
cannot be published, nothing is recorded and the call fails with 503); the service then answers the
held request. A second decision on the same item is 409.

A policy change is published as `cairn.admin_action.recorded.v1` (`policy.changed`); when that
cannot be published, the change is undone and the call fails (503), so the audit trail never misses one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Body, FastAPI, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cairn_auth import Authenticator, AuthSettings, Principal, admin_action
from cairn_auth.domain import PLATFORM_TENANT
from cairn_auth.fastapi import Admin, Operator, Viewer, install_auth, not_found
from cairn_bus import Publisher, TransientError
from cairn_events import JsonScalar, ReviewDecision, SafetyFinding, Verdict
from cairn_observability import get_logger
from cairn_safety.api_screen import add_screen_routes
from cairn_safety.decisions import announcer
from cairn_safety.domain.policy import Policy, PolicyError
from cairn_safety.domain.reviews import (
    ReviewAlreadyResolvedError,
    ReviewItem,
    ReviewNotFoundError,
    ReviewStatus,
)
from cairn_safety.ports import PolicyStore, ReviewQueue
from cairn_safety.screening import Screener

__all__ = ["DecisionIn", "PolicyChangeOut", "ReviewOut", "create_app"]

POLICY_CHANGED = "policy.changed"
log = get_logger("cairn.safety.api")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ReviewOut(BaseModel):
    """One review item: the flagged text, why it was flagged and, once decided, the decision."""

    model_config = ConfigDict(frozen=True)

    review_id: str = Field(description="Review id.")
    request_id: str = Field(description="The request whose input or output was flagged.")
    tenant: str = Field(description="The request's tenant.")
    stage: Literal["input", "output"] = Field(description="Which text was flagged.")
    verdict: Verdict = Field(description="The automatic verdict (`review`).")
    findings: list[SafetyFinding] = Field(description="Every check's finding.")
    text: str = Field(description="The flagged text, with personal data that fired redacted.")
    policy: str = Field(description="The policy that decided, `name@version`.")
    status: ReviewStatus = Field(description="pending, approved, edited or rejected.")
    created_at: datetime = Field(description="When it was queued.")
    deadline_at: datetime | None = Field(description="When the policy's default applies if no one decides.")
    on_deadline: ReviewDecision = Field(description="The policy's default at the deadline.")
    resolved_by: str | None = Field(
        description="Who decided: the reviewer's API key id, `cli:<user>`, or `deadline`."
    )
    resolved_at: datetime | None = Field(description="When it was decided.")
    note: str | None = Field(description="The reviewer's note or reason.")
    edited_text: str | None = Field(description="The reviewer's corrected text, for an edit.")

    @classmethod
    def of(cls, item: ReviewItem) -> ReviewOut:
        return cls(
            review_id=item.review_id,
            request_id=item.request_id,
            tenant=item.tenant,
            stage=item.stage,
            verdict=item.verdict,
            findings=item.findings,
            text=item.text,
            policy=item.policy,
            status=item.status,
            created_at=item.created_at,
            deadline_at=item.deadline_at,
            on_deadline=item.on_deadline,
            resolved_by=item.resolved_by,
            resolved_at=item.resolved_at,
            note=item.note,
            edited_text=item.edited_text,
        )


class DecisionIn(BaseModel):
    """A reviewer's decision on a pending item."""

    model_config = ConfigDict(extra="forbid")

    decision: ReviewDecision = Field(
        description="approve (release the held answer), edit (release `text` instead, screened again) "
        "or reject (answer the request `blocked`)."
    )
    text: str | None = Field(
        None, min_length=1, max_length=32000, description="The corrected answer; required for `edit` only."
    )
    note: str | None = Field(None, max_length=2000, description="Why (the reason a rejection answers with).")

    @model_validator(mode="after")
    def _text_for_edit_only(self) -> DecisionIn:
        if (self.decision is ReviewDecision.EDIT) != (self.text is not None and bool(self.text.strip())):
            raise ValueError("`text` is required for edit, and only for edit")
        return self


class PolicyChangeOut(BaseModel):
    """What a policy write did."""

    model_config = ConfigDict(frozen=True)

    policy: Policy = Field(description="The policy now in force for the tenant.")
    changed: bool = Field(description="False when the same policy was in force already (nothing recorded).")
    previous_version: int | None = Field(description="The version it replaced, if the tenant had its own.")


def create_app(
    *,
    reviews: ReviewQueue,
    policies: PolicyStore,
    publisher: Publisher,
    authenticator: Authenticator | None,
    auth: AuthSettings | None = None,
    clock: Callable[[], datetime] = _utc_now,
    screener: Screener | None = None,
) -> FastAPI:
    """The API on the service's review queue and policy store; admin actions go to `publisher`.

    `authenticator` checks API keys; it may be None only when `auth.enabled` is false. `screener` is
    the service's own (the event handlers'), for `POST /v1/screen`; without one that route answers 503.
    """
    app = FastAPI(
        title="Cairn safety",
        version="1",
        description="The human review queue, per-tenant safety policies and screening on request.",
    )
    install_auth(app, authenticator, auth)

    async def visible(review_id: str, principal: Principal) -> ReviewItem:
        item = await reviews.get(review_id)
        if item is None:
            raise not_found()
        principal.check_tenant(item.tenant)  # another tenant's item: the same 404
        return item

    @app.get("/v1/reviews", summary="List review items, oldest first")
    async def list_reviews(
        principal: Viewer,
        status_: Annotated[
            Literal["pending", "approved", "edited", "rejected", "all"],
            Query(alias="status", description="Only items with this status (`all`: any)."),
        ] = "pending",
        tenant: Annotated[
            str | None, Query(description="Only this tenant's items (yours by default).")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="At most this many items.")] = 100,
    ) -> list[ReviewOut]:
        scope = principal.scope(tenant)
        wanted = None if status_ == "all" else ReviewStatus(status_)
        return [ReviewOut.of(i) for i in await reviews.items(wanted, scope, limit)]

    @app.get("/v1/reviews/{review_id}", summary="One review item")
    async def show_review(review_id: str, principal: Viewer) -> ReviewOut:
        return ReviewOut.of(await visible(review_id, principal))

    @app.post("/v1/reviews/{review_id}/decision", summary="Approve, edit or reject a pending item")
    async def decide(review_id: str, decision: DecisionIn, principal: Operator) -> ReviewOut:
        await visible(review_id, principal)
        try:
            item = await reviews.resolve(
                review_id,
                decision.decision,
                resolved_by=principal.key_id,
                note=decision.note,
                text=decision.text,
                now=clock(),
                then=announcer(publisher),
            )
        except ReviewNotFoundError:
            raise not_found() from None
        except ReviewAlreadyResolvedError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
        except TransientError as exc:
            log.error("review decision not recorded", review_id=review_id, error=repr(exc))
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, detail="the database is unavailable"
            ) from None
        except Exception as exc:  # the decision could not be published: nothing was recorded
            log.error("review decision not published; not recorded", review_id=review_id, error=repr(exc))
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                detail="the decision could not be published; not recorded",
            ) from None
        log.info("review decided", review_id=review_id, status=item.status.value, reviewer=principal.key_id)
        return ReviewOut.of(item)

    def policy_for(tenant: str) -> Policy:
        try:
            return policies.policy_for(tenant)
        except PolicyError as exc:
            log.error("policy cannot be loaded", tenant=tenant, error=str(exc))
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, detail="policies cannot be loaded"
            ) from None

    add_screen_routes(app, screener, policy_for, policies.default)

    @app.get("/v1/policies", summary="Policies: the one that applies to your tenant (platform admins: all)")
    async def list_policies(principal: Viewer) -> list[Policy]:
        if not principal.platform_wide:
            return [policy_for(principal.tenant)]
        try:
            return policies.policies()
        except PolicyError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from None

    @app.get("/v1/policies/{tenant}", summary="The policy that applies to a tenant")
    async def show_policy(tenant: str, principal: Viewer) -> Policy:
        principal.check_tenant(tenant)
        return policy_for(tenant)

    @app.put("/v1/policies/{tenant}", summary="Set a tenant's own policy (a new version)")
    async def put_policy(
        tenant: str,
        principal: Admin,
        policy: Annotated[Policy, Body(description="The whole policy; `name` must be the tenant.")],
    ) -> PolicyChangeOut:
        principal.check_tenant(tenant)
        if tenant == policies.default and not principal.platform_wide:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail="the default policy applies to every tenant: only platform admins may change it",
            )
        if policy.name != tenant:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"name must be the tenant {tenant!r}"
            )
        try:
            current = policies.policy_for(tenant)
        except PolicyError:
            current = None
        previous = current if current is not None and current.name == tenant else None
        if previous == policy:
            return PolicyChangeOut(policy=policy, changed=False, previous_version=previous.version)
        if previous is not None and policy.version <= previous.version:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"version must be above {previous.version}, the version in force "
                "(verdicts record name@version)",
            )
        details: dict[str, JsonScalar] = {"policy": policy.ref, "version": policy.version}
        if previous is not None:
            details["previous_version"] = previous.version
        event = admin_action(
            principal,
            POLICY_CHANGED,
            f"policy:{tenant}",
            tenant=PLATFORM_TENANT if tenant == policies.default else tenant,
            details=details,
            at=clock(),
        )
        try:
            policies.put(policy)
        except OSError as exc:
            log.error("policy cannot be written", policy=policy.ref, error=repr(exc))
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, detail="the policy folder cannot be written"
            ) from None
        try:
            await publisher.publish(event)
        except Exception as exc:  # not in the audit trail: undo it
            log.error("policy change not recorded; undone", policy=policy.ref, error=repr(exc))
            if previous is not None:
                policies.put(previous)
            else:
                policies.remove(tenant)
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, detail="the change could not be recorded; undone"
            ) from None
        log.info("policy changed", policy=policy.ref, by=principal.key_id)
        return PolicyChangeOut(
            policy=policy, changed=True, previous_version=previous.version if previous else None
        )

    return app
