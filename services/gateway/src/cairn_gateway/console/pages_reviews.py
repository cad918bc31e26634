"""The review queue: held inputs and answers, and a reviewer's approve / edit / reject."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response

from cairn_auth import Role
from cairn_gateway.console.core import Caller, Console, ConsoleError

__all__ = ["add_routes"]

STATUSES = ("pending", "approved", "edited", "rejected", "all")
DECISIONS = {"approve": "approved", "edit": "edited", "reject": "rejected"}


def add_routes(console: Console) -> None:
    router = console.router

    @router.get("/reviews", response_class=HTMLResponse)
    async def reviews(
        request: Request, caller: Caller = Depends(console.caller), status: str = "pending", tenant: str = ""
    ) -> Response:
        if status not in STATUSES:
            raise ConsoleError(400, "Invalid filter", f"status must be one of {', '.join(STATUSES)}")
        items = await console.get(
            caller, "safety", "/v1/reviews", status=status, tenant=tenant or None, limit=200
        )
        return console.page(
            "reviews.html", caller, request, items=items, statuses=STATUSES, status=status, tenant=tenant
        )

    @router.get("/reviews/{review_id}", response_class=HTMLResponse)
    async def review(request: Request, review_id: str, caller: Caller = Depends(console.caller)) -> Response:
        item = await console.get(caller, "safety", f"/v1/reviews/{review_id}")
        return console.page("review.html", caller, request, item=item, can_decide=caller.can(Role.OPERATOR))

    @router.post("/reviews/{review_id}/decision")
    async def decide(request: Request, review_id: str, caller: Caller = Depends(console.caller)) -> Response:
        fields = await console.form(request, caller)
        caller.require(Role.OPERATOR, "deciding a review")
        decision = fields.get("decision", "")
        if decision not in DECISIONS:
            raise ConsoleError(400, "Invalid decision", "the decision must be approve, edit or reject")
        body: dict[str, str] = {"decision": decision}
        if decision == "edit":
            text = fields.get("text", "").strip()
            if not text:
                raise ConsoleError(400, "Nothing to release", "an edit needs the corrected text")
            body["text"] = text
        if fields.get("note", "").strip():
            body["note"] = fields["note"].strip()
        await console.post(caller, "safety", f"/v1/reviews/{review_id}/decision", body)
        return console.redirect(f"/reviews/{review_id}", DECISIONS[decision])
