"""The management HTTP API (FastAPI; OpenAPI docs at /docs): the CLI's operations over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cairn_auth import Authenticator, AuthSettings, Principal
from cairn_auth.domain.principals import TENANT_PATTERN
from cairn_auth.fastapi import ANONYMOUS_ADMIN, Admin, Operator, Viewer, install_auth
from cairn_bus import Publisher, TransientError
from cairn_events import AdminActionRecordedV1, ChatMessage, GenerationParams, JsonScalar, RetrievalOptions
from cairn_prompt_store import management
from cairn_prompt_store.domain.errors import (
    InvalidPromptError,
    InvalidReferenceError,
    RenderError,
    ResolutionError,
)
from cairn_prompt_store.domain.experiments import Experiment, Variant, WinnerPolicy
from cairn_prompt_store.domain.prompt_file import dump_prompt, load_prompt
from cairn_prompt_store.domain.proposals import WinnerProposal
from cairn_prompt_store.domain.records import LabelMove, PromptSummary, PromptVersion
from cairn_prompt_store.domain.refs import PRODUCTION
from cairn_prompt_store.domain.spec import PromptSpec
from cairn_prompt_store.domain.tenants import SHARED_TENANT, lookup_order
from cairn_prompt_store.ports import PromptStore
from cairn_prompt_store.resolution import home_tenant


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class PromptOut(_Out):
    """A prompt in the listing."""

    name: str = Field(description="Prompt name.")
    tenant: str = Field(description="The prompt's tenant (`default`: shared with every tenant).")
    latest_version: int = Field(description="Highest version number.")
    description: str = Field(description="Description of the latest version.")
    labels: dict[str, int] = Field(description="Labels and the versions they point at.")
    experiment: str | None = Field(description="The experiment running on the prompt, if any.")

    @classmethod
    def of(cls, s: PromptSummary) -> PromptOut:
        return cls(
            name=s.name,
            tenant=s.tenant,
            latest_version=s.latest_version,
            description=s.description,
            labels=s.labels,
            experiment=s.experiment,
        )


class VersionOut(_Out):
    """One immutable version."""

    name: str = Field(description="Prompt name.")
    tenant: str = Field(description="The prompt's tenant (`default`: shared with every tenant).")
    version: int = Field(description="Version number.")
    label: str | None = Field(None, description="The label the reference resolved through, if any.")
    content_hash: str = Field(description="`sha256:` of the canonical spec.")
    created_at: datetime = Field(description="When the version was pushed.")
    created_by: str = Field(description="Who pushed it.")
    spec: PromptSpec = Field(description="The version's content.")
    source: str = Field(description="The canonical YAML source (what diffs compare).")

    @classmethod
    def of(cls, v: PromptVersion, label: str | None = None, *, tenant: str) -> VersionOut:
        return cls(
            name=v.name,
            tenant=tenant,
            version=v.version,
            label=label,
            content_hash=v.content_hash,
            created_at=v.created_at,
            created_by=v.created_by,
            spec=v.spec,
            source=dump_prompt(v.spec),
        )


class LabelMoveOut(_Out):
    """A label move."""

    name: str = Field(description="Prompt name.")
    label: str = Field(description="The label.")
    version: int = Field(description="The version it points at now.")
    previous: int | None = Field(description="Where it pointed before; none for a new label.")
    moved_by: str = Field(description="Who moved it.")
    moved_at: datetime = Field(description="When.")

    @classmethod
    def of(cls, m: LabelMove) -> LabelMoveOut:
        return cls(
            name=m.name,
            label=m.label,
            version=m.version,
            previous=m.previous,
            moved_by=m.moved_by,
            moved_at=m.moved_at,
        )


class PushIn(BaseModel):
    """A prompt to push: a spec object or the text of a YAML prompt file (exactly one)."""

    spec: PromptSpec | None = Field(None, description="The prompt spec.")
    yaml: str | None = Field(None, description="Or the YAML prompt file's text.")
    labels: list[str] = Field([], description="Labels to point at the pushed version.")
    by: str = Field(
        "api",
        min_length=1,
        description="Who pushes, when access control is off; otherwise the API key's id is recorded.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> PushIn:
        if (self.spec is None) == (self.yaml is None):
            raise ValueError("give exactly one of `spec` and `yaml`")
        return self


class PushOut(_Out):
    """What a push did."""

    name: str = Field(description="Prompt name.")
    tenant: str = Field(description="The tenant the prompt was pushed to.")
    version: int = Field(description="The version holding the pushed content.")
    created: bool = Field(description="False when identical content already was that version.")
    content_hash: str = Field(description="`sha256:` of the canonical spec.")
    moved: list[LabelMoveOut] = Field(description="Labels pointed at the version.")


class LabelIn(BaseModel):
    """Where to point a label."""

    version: int = Field(ge=1, description="The version the label should point at.")
    by: str = Field(
        "api", min_length=1, description="Who moves it, when access control is off (else the key id)."
    )


class RenderIn(BaseModel):
    """A preview: what a request naming `prompt` would get."""

    prompt: str = Field(description="NAME, NAME@LABEL or NAME:VERSION.")
    variables: dict[str, JsonScalar] = Field({}, description="Template variables.")
    messages: list[ChatMessage] = Field([], description="Extra turns, as a request's.")
    user_id: str | None = Field(None, description="Apply experiments as for this user.")
    params: GenerationParams | None = Field(None, description="The request's sampling parameters.")
    retrieval: RetrievalOptions | None = Field(None, description="The request's retrieval options.")
    model: str | None = Field(None, description="The request's model.")


class RenderOut(_Out):
    """A rendered prompt."""

    prompt_name: str = Field(description="Prompt name.")
    prompt_tenant: str = Field(description="The tenant the prompt was found in (own, else `default`).")
    prompt_version: int = Field(description="Version rendered.")
    prompt_label: str | None = Field(description="Label resolved through.")
    experiment: str | None = Field(description="Experiment that chose the version.")
    variant: str | None = Field(description="Variant assigned.")
    messages: list[ChatMessage] = Field(description="The rendered conversation.")
    retrieval: RetrievalOptions | None = Field(description="Retrieval to run, if any.")
    params: GenerationParams = Field(description="Merged sampling parameters.")
    model: str | None = Field(description="Model asked for.")


class ExperimentIn(BaseModel):
    """An experiment on the prompt in the path."""

    name: str = Field(description="Experiment id.")
    label: str = Field(PRODUCTION, description="Requests resolving through this label join.")
    variants: list[Variant] = Field(min_length=1, description="The arms.")
    on_winner: WinnerPolicy = Field(
        "propose", description="A significant winner is promoted to `label` or proposed to an operator."
    )
    by: str = Field(
        "api", min_length=1, description="Who sets it, when access control is off (else the key id)."
    )


class ExperimentOut(Experiment):
    """A running experiment and the tenant of its prompt."""

    tenant: str = Field(description="The tenant whose prompt the experiment splits (`default`: shared).")

    @classmethod
    def of(cls, e: Experiment, tenant: str) -> ExperimentOut:
        return cls(**e.model_dump(), tenant=tenant)


class ProposalOut(BaseModel):
    """A proposal to promote an experiment's significant winner, kept for an operator."""

    tenant: str = Field(description="The tenant of the experiment's prompt.")
    conclusion_id: str = Field(description="The evaluator's conclusion this proposal comes from.")
    prompt: str = Field(description="The prompt.")
    experiment: str = Field(description="The experiment.")
    label: str = Field(description="The label accepting would move.")
    variant: str = Field(description="The winning variant.")
    version: int = Field(description="The version the label would point at.")
    evidence: float = Field(description="The sequential test's evidence (likelihood ratio) for the winner.")
    summary: str = Field(description="The arms' positive-feedback rates with 95 % intervals.")
    proposed_at: datetime = Field(description="When the evaluator concluded.")
    status: str = Field(description="`open`, `accepted` or `dismissed`.")

    @classmethod
    def of(cls, p: WinnerProposal, tenant: str) -> ProposalOut:
        return cls(
            tenant=tenant,
            conclusion_id=p.conclusion_id,
            prompt=p.prompt,
            experiment=p.experiment,
            label=p.label,
            variant=p.variant,
            version=p.version,
            evidence=p.evidence,
            summary=p.summary,
            proposed_at=p.proposed_at,
            status=p.status,
        )


def _store(request: Request) -> PromptStore:
    store: PromptStore = request.app.state.store
    return store


async def _record(request: Request, event: AdminActionRecordedV1 | None) -> None:
    publisher: Publisher | None = request.app.state.publisher
    if event is None:
        return
    if publisher is None:  # never reached with the service's wiring: refuse rather than lose the record
        raise TransientError("the audit trail is not reachable: administrative action not recorded")
    await management.record(publisher, event)


def _own_tenant(principal: Principal) -> str:
    """Where a caller acts when it names no tenant: its own; the shared tenant for platform-wide keys."""
    return SHARED_TENANT if principal.platform_wide else principal.tenant


def _reading(principal: Principal, tenant: str | None) -> str:
    """The tenant a read acts for: the one asked for (its own or the shared one), else its own."""
    if tenant is None:
        return _own_tenant(principal)
    if tenant != SHARED_TENANT:
        principal.check_tenant(tenant)  # another tenant: 404, as if nothing were there
    return tenant


def _writing(principal: Principal, tenant: str | None) -> str:
    """The tenant a change acts on: the caller's own (or, for platform-wide keys, the one named).

    Shared prompts are read-only to tenant-bound keys: naming `default` is answered like another
    tenant (404).
    """
    target = _own_tenant(principal) if tenant is None else tenant
    principal.check_tenant(target)
    return target


def _by(principal: Principal, claimed: str) -> str:
    """Who a change is recorded under: the API key's id (the claimed name only when auth is off)."""
    return claimed if principal is ANONYMOUS_ADMIN else principal.key_id


TenantQuery = Annotated[
    str | None,
    Query(
        pattern=TENANT_PATTERN,
        description="The tenant to act on (default: the API key's own; `default` holds shared prompts).",
    ),
]


def create_app(
    store: PromptStore,
    *,
    publisher: Publisher | None = None,
    authenticator: Authenticator | None = None,
    auth: AuthSettings | None = None,
) -> FastAPI:
    """The API on `store` (the service serves it on the store `bootstrap.build` opened).

    Every route but `/health` needs an API key (`auth`, default from `CAIRN_AUTH_*`; `authenticator`
    must be given unless access control is off): viewers read their tenant's prompts and the shared
    ones, operators push versions and move labels, admins also run experiments; a platform-wide
    (`*`) admin reaches every tenant. Label moves and experiment changes are published on
    `cairn.admin` through `publisher`; without one they are refused (503) rather than left unrecorded.
    """
    app = FastAPI(
        title="Cairn prompt store",
        description="Prompt templates with immutable versions, movable labels and sticky A/B experiments. "
        "Every route but /health needs an API key (Authorization: Bearer <key> or X-API-Key).",
        version="1",
    )
    app.state.store = store
    app.state.publisher = publisher
    install_auth(app, authenticator, auth)

    @app.exception_handler(ResolutionError)
    async def not_found(_: Request, exc: ResolutionError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(InvalidPromptError)
    @app.exception_handler(InvalidReferenceError)
    @app.exception_handler(RenderError)
    async def unprocessable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(TransientError)
    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness (no key needed)."""
        return {"status": "ok"}

    @app.get("/prompts")
    async def list_prompts(
        request: Request, principal: Viewer, tenant: TenantQuery = None
    ) -> list[PromptOut]:
        """Prompts with their latest version, labels and experiment.

        Without `tenant`: the caller's tenant's and the shared ones (every tenant's for a
        platform-wide key); with it, that tenant's.
        """
        store = _store(request)
        if tenant is None and principal.platform_wide:
            return [PromptOut.of(s) for s in await store.prompts(tenant=None)]
        scope = (tenant,) if tenant is not None else lookup_order(_own_tenant(principal))
        found = []
        for t in scope:
            found.extend(await store.prompts(tenant=_reading(principal, t)))
        return [PromptOut.of(s) for s in sorted(found, key=lambda s: (s.name, s.tenant))]

    @app.post("/prompts", status_code=200)
    async def push_prompt(
        request: Request, body: PushIn, principal: Operator, tenant: TenantQuery = None
    ) -> PushOut:
        """Push a version; identical content returns the existing version (`created: false`)."""
        target = _writing(principal, tenant)
        spec = body.spec if body.spec is not None else load_prompt(body.yaml or "", "yaml")
        by = _by(principal, body.by)
        pushed = await management.push(_store(request), spec, body.labels, by, tenant=target)
        for move in pushed.moves:
            await _record(request, management.label_moved(principal, move, tenant=target))
        v = pushed.result.version
        return PushOut(
            name=v.name,
            tenant=target,
            version=v.version,
            created=pushed.result.created,
            content_hash=v.content_hash,
            moved=[LabelMoveOut.of(m) for m in pushed.moves],
        )

    @app.get("/prompts/{name:path}/versions/{version}")
    async def get_version(
        request: Request, name: str, version: int, principal: Viewer, tenant: TenantQuery = None
    ) -> VersionOut:
        """One version."""
        found = await management.show(
            _store(request), f"{name}:{version}", tenant=_reading(principal, tenant)
        )
        return VersionOut.of(found.version, tenant=found.tenant)

    @app.get("/prompts/{name:path}/versions")
    async def list_versions(
        request: Request, name: str, principal: Viewer, tenant: TenantQuery = None
    ) -> list[VersionOut]:
        """Every version, oldest first."""
        home = await home_tenant(_store(request), name, _reading(principal, tenant))
        return [VersionOut.of(v, tenant=home) for v in await _store(request).versions(name, tenant=home)]

    @app.get("/prompts/{name:path}/labels")
    async def get_labels(
        request: Request, name: str, principal: Viewer, tenant: TenantQuery = None
    ) -> dict[str, int]:
        """The prompt's labels."""
        home = await home_tenant(_store(request), name, _reading(principal, tenant))
        return await _store(request).labels(name, tenant=home)

    @app.put("/prompts/{name:path}/labels/{label}")
    async def put_label(
        request: Request,
        name: str,
        label: str,
        body: LabelIn,
        principal: Operator,
        tenant: TenantQuery = None,
    ) -> LabelMoveOut:
        """Point a label at a version (recorded in the history and, as an admin action, on `cairn.admin`)."""
        target = _writing(principal, tenant)
        move = await management.move_label(
            _store(request), name, body.version, label, _by(principal, body.by), tenant=target
        )
        await _record(request, management.label_moved(principal, move, tenant=target))
        return LabelMoveOut.of(move)

    @app.get("/prompts/{name:path}/history")
    async def label_history(
        request: Request, name: str, principal: Viewer, tenant: TenantQuery = None
    ) -> list[LabelMoveOut]:
        """Every label move, oldest first."""
        home = await home_tenant(_store(request), name, _reading(principal, tenant))
        return [LabelMoveOut.of(m) for m in await _store(request).label_history(name, tenant=home)]

    @app.get("/prompts/{name:path}/diff", response_class=PlainTextResponse)
    async def diff(
        request: Request,
        name: str,
        old: Annotated[int, Query(alias="from", ge=1)],
        new: Annotated[int, Query(alias="to", ge=1)],
        principal: Viewer,
        tenant: TenantQuery = None,
    ) -> str:
        """Unified diff of two versions' canonical YAML sources."""
        return await management.diff(_store(request), name, old, new, tenant=_reading(principal, tenant))

    @app.get("/prompts/{ref:path}")
    async def show(request: Request, ref: str, principal: Viewer, tenant: TenantQuery = None) -> VersionOut:
        """The version a reference names: NAME (production label), NAME@LABEL or NAME:VERSION.

        The name is looked up in the tenant, then among the shared prompts.
        """
        found = await management.show(_store(request), ref, tenant=_reading(principal, tenant))
        return VersionOut.of(found.version, found.label, tenant=found.tenant)

    @app.post("/render")
    async def render_prompt(
        request: Request, body: RenderIn, principal: Viewer, tenant: TenantQuery = None
    ) -> RenderOut:
        """Render as a request of the tenant would (422 with the rejection reason when it would be rejected)."""
        p = await management.preview(
            _store(request),
            body.prompt,
            body.variables,
            body.messages,
            subject=body.user_id,
            params=body.params,
            retrieval=body.retrieval,
            model=body.model,
            tenant=_reading(principal, tenant),
        )
        return RenderOut(
            prompt_name=p.version.name,
            prompt_tenant=p.resolution.tenant,
            prompt_version=p.version.version,
            prompt_label=p.resolution.label,
            experiment=p.resolution.experiment,
            variant=p.resolution.variant,
            messages=p.rendered.messages,
            retrieval=p.rendered.retrieval,
            params=p.rendered.params,
            model=p.rendered.model,
        )

    @app.get("/experiments")
    async def list_experiments(
        request: Request, principal: Viewer, tenant: TenantQuery = None
    ) -> list[ExperimentOut]:
        """Running experiments: of the caller's tenant and the shared prompts (every tenant's for a
        platform-wide key), or of `tenant`."""
        store = _store(request)
        if tenant is not None:
            scope: tuple[str, ...] = (_reading(principal, tenant),)
        elif principal.platform_wide:
            scope = tuple(sorted({s.tenant for s in await store.prompts(tenant=None)}))
        else:
            scope = lookup_order(principal.tenant)
        return [ExperimentOut.of(e, t) for t in scope for e in await store.experiments(tenant=t)]

    @app.get("/proposals")
    async def list_proposals(
        request: Request, principal: Viewer, tenant: TenantQuery = None
    ) -> list[ProposalOut]:
        """Proposals to promote experiment winners (policy `propose`): of the caller's tenant and the
        shared prompts, or of `tenant`; accept them with `cairn prompts experiments accept`."""
        store = _store(request)
        scope = (_reading(principal, tenant),) if tenant is not None else lookup_order(principal.tenant)
        return [ProposalOut.of(p, t) for t in scope for p in await store.proposals(tenant=t)]

    @app.get("/experiments/{prompt:path}")
    async def get_experiment(
        request: Request, prompt: str, principal: Viewer, tenant: TenantQuery = None
    ) -> ExperimentOut:
        """The experiment on a prompt (the tenant's, else the shared prompt's)."""
        home = await home_tenant(_store(request), prompt, _reading(principal, tenant))
        found = await _store(request).experiment(prompt, tenant=home)
        if found is None:
            raise HTTPException(404, f"no experiment runs on prompt {prompt!r}")
        return ExperimentOut.of(found, home)

    @app.put("/experiments/{prompt:path}")
    async def put_experiment(
        request: Request,
        prompt: str,
        body: Annotated[ExperimentIn, Body()],
        principal: Admin,
        tenant: TenantQuery = None,
    ) -> ExperimentOut:
        """Start or replace the prompt's experiment; every arm must resolve (an admin action)."""
        target = _writing(principal, tenant)
        try:
            experiment = Experiment(
                name=body.name,
                prompt=prompt,
                label=body.label,
                variants=body.variants,
                on_winner=body.on_winner,
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        await management.set_experiment(_store(request), experiment, _by(principal, body.by), tenant=target)
        event = management.experiment_changed(
            principal, management.EXPERIMENT_SET, prompt, tenant=target, experiment=experiment
        )
        await _record(request, event)
        return ExperimentOut.of(experiment, target)

    @app.delete("/experiments/{prompt:path}", status_code=204)
    async def delete_experiment(
        request: Request, prompt: str, principal: Admin, tenant: TenantQuery = None
    ) -> None:
        """Stop the prompt's experiment (an admin action)."""
        target = _writing(principal, tenant)
        await management.clear_experiment(_store(request), prompt, tenant=target)
        event = management.experiment_changed(principal, management.EXPERIMENT_CLEARED, prompt, tenant=target)
        await _record(request, event)

    return app
