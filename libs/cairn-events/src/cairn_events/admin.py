"""Administrative actions: label moves, promotions, policy changes and API key changes, for the audit trail."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from cairn_events.base import Event, Identifier, Timestamp
from cairn_events.common import JsonScalar

__all__ = ["ACTION_PATTERN", "TENANT_SCOPE_PATTERN", "AdminActionRecordedV1"]

TENANT_SCOPE_PATTERN = r"^(\*|[A-Za-z0-9._:-]{1,128})$"
"""A tenant id, or `*` for an action that concerns the whole platform."""

ACTION_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){1,4}$"
"""A dotted, lower-case action name, e.g. `prompt.label.moved` or `apikey.created`."""


class AdminActionRecordedV1(Event):
    """Someone changed how the platform behaves: moved a label, promoted a model, changed a policy,
    created or revoked an API key. The audit trail keeps every such action forever.

    Never carries a secret: an API key appears by its key id only.
    """

    event_type: ClassVar[str] = "cairn.admin_action.recorded.v1"
    topic: ClassVar[str] = "cairn.admin"
    key_field: ClassVar[str] = "tenant"

    action_id: Identifier = Field(description="Unique id of this action.")
    actor: str = Field(
        min_length=1,
        max_length=256,
        description="Who acted: the id of the API key used, or a user name for the `cairn` CLI.",
    )
    actor_role: Literal["viewer", "operator", "admin"] = Field(
        description="The role the actor held when acting (the CLI acts as `admin`)."
    )
    tenant: Annotated[str, StringConstraints(pattern=TENANT_SCOPE_PATTERN)] = Field(
        description="The tenant the action concerns, or `*` for the whole platform."
    )
    action: Annotated[str, StringConstraints(pattern=ACTION_PATTERN)] = Field(
        description="What was done, e.g. `prompt.label.moved`, `model.promoted`, `policy.changed`, "
        "`apikey.created`, `apikey.revoked`."
    )
    target: str = Field(
        min_length=1,
        max_length=512,
        description="What it was done to, e.g. `prompt:support-answer@production` or `apikey:3f9a0c1b2d4e`.",
    )
    details: dict[str, JsonScalar] = Field(
        {}, description="Particulars of the action as scalars, e.g. `from_version` and `to_version`."
    )
    recorded_at: Timestamp = Field(description="When the action took effect (RFC 3339).")
