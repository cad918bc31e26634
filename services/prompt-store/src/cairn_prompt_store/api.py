"""The management HTTP API (FastAPI; OpenAPI docs at /docs): the CLI's operations over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cairn_bus import TransientError
from cairn_events import ChatMessage, GenerationParams, JsonScalar, RetrievalOptions
from cairn_prompt_store import management
from cairn_prompt_store.domain.errors import (
    InvalidPromptError,
    InvalidReferenceError,
    RenderError,
    ResolutionError,
)
from cairn_prompt_store.domain.experiments import Experiment, Variant
from cairn_prompt_store.domain.prompt_file import dump_prompt, load_prompt
from cairn_prompt_store.domain.records import LabelMove, PromptSummary, PromptVersion
from cairn_prompt_store.domain.refs import PRODUCTION
from cairn_prompt_store.domain.spec import PromptSpec
from cairn_prompt_store.ports import PromptStore
from cairn_prompt_store.settings import Settings


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class PromptOut(_Out):
    """A prompt in the listing."""

    name: str = Field(description="Prompt name.")
    latest_version: int = Field(description="Highest version number.")
    description: str = Field(description="Description of the latest version.")
    labels: dict[str, int] = Field(description="Labels and the versions they point at.")
    experiment: str | None = Field(description="The experiment running on the prompt, if any.")

    @classmethod
    def of(cls, s: PromptSummary) -> PromptOut:
        return cls(
            name=s.name,
            latest_version=s.latest_version,
            description=s.description,
            labels=s.labels,
            experiment=s.experiment,
        )


class VersionOut(_Out):
    """One immutable version."""

    name: str = Field(description="Prompt name.")
    version: int = Field(description="Version number.")
    label: str | None = Field(None, description="The label the reference resolved through, if any.")
    content_hash: str = Field(description="`sha256:` of the canonical spec.")
    created_at: datetime = Field(description="When the version was pushed.")
    created_by: str = Field(description="Who pushed it.")
    spec: PromptSpec = Field(description="The version's content.")
    source: str = Field(description="The canonical YAML source (what diffs compare).")

    @classmethod
    def of(cls, v: PromptVersion, label: str | None = None) -> VersionOut:
        return cls(
            name=v.name,
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
    by: str = Field("api", min_length=1, description="Who pushes (recorded with the version and moves).")

    @model_validator(mode="after")
    def _one_source(self) -> PushIn:
        if (self.spec is None) == (self.yaml is None):
            raise ValueError("give exactly one of `spec` and `yaml`")
        return self


class PushOut(_Out):
    """What a push did."""

    name: str = Field(description="Prompt name.")
    version: int = Field(description="The version holding the pushed content.")
    created: bool = Field(description="False when identical content already was that version.")
    content_hash: str = Field(description="`sha256:` of the canonical spec.")
    moved: list[LabelMoveOut] = Field(description="Labels pointed at the version.")


class LabelIn(BaseModel):
    """Where to point a label."""

    version: int = Field(ge=1, description="The version the label should point at.")
    by: str = Field("api", min_length=1, description="Who moves it.")


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
    by: str = Field("api", min_length=1, description="Who sets it.")


def _store(request: Request) -> PromptStore:
    store: PromptStore = request.app.state.store
    return store


def create_app(settings: Settings, store: PromptStore | None = None) -> FastAPI:
    """The API on `store`; without one, on a PostgreSQL pool opened and closed by the app's lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if store is not None:
            yield
            return
        from cairn_prompt_store.adapters.postgres import PostgresPromptStore, create_pool

        pool = await create_pool(
            settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max
        )
        try:
            pg = PostgresPromptStore(pool)
            await pg.migrate()
            app.state.store = pg
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="Cairn prompt store",
        description="Prompt templates with immutable versions, movable labels and sticky A/B experiments.",
        version="1",
        lifespan=lifespan,
    )
    app.state.store = store

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
        """Liveness."""
        return {"status": "ok"}

    @app.get("/prompts")
    async def list_prompts(request: Request) -> list[PromptOut]:
        """Every prompt with its latest version, labels and experiment."""
        return [PromptOut.of(s) for s in await _store(request).prompts()]

    @app.post("/prompts", status_code=200)
    async def push_prompt(request: Request, body: PushIn) -> PushOut:
        """Push a version; identical content returns the existing version (`created: false`)."""
        spec = body.spec if body.spec is not None else load_prompt(body.yaml or "", "yaml")
        pushed = await management.push(_store(request), spec, body.labels, body.by)
        v = pushed.result.version
        return PushOut(
            name=v.name,
            version=v.version,
            created=pushed.result.created,
            content_hash=v.content_hash,
            moved=[LabelMoveOut.of(m) for m in pushed.moves],
        )

    @app.get("/prompts/{name:path}/versions/{version}")
    async def get_version(request: Request, name: str, version: int) -> VersionOut:
        """One version."""
        found = await management.show(_store(request), f"{name}:{version}")
        return VersionOut.of(found.version)

    @app.get("/prompts/{name:path}/versions")
    async def list_versions(request: Request, name: str) -> list[VersionOut]:
        """Every version, oldest first."""
        versions = await _store(request).versions(name)
        if not versions:
            raise HTTPException(404, f"unknown prompt {name!r}")
        return [VersionOut.of(v) for v in versions]

    @app.get("/prompts/{name:path}/labels")
    async def get_labels(request: Request, name: str) -> dict[str, int]:
        """The prompt's labels."""
        if not await _store(request).versions(name):
            raise HTTPException(404, f"unknown prompt {name!r}")
        return await _store(request).labels(name)

    @app.put("/prompts/{name:path}/labels/{label}")
    async def put_label(request: Request, name: str, label: str, body: LabelIn) -> LabelMoveOut:
        """Point a label at a version (recorded in the history)."""
        return LabelMoveOut.of(
            await management.move_label(_store(request), name, body.version, label, body.by)
        )

    @app.get("/prompts/{name:path}/history")
    async def label_history(request: Request, name: str) -> list[LabelMoveOut]:
        """Every label move, oldest first."""
        if not await _store(request).versions(name):
            raise HTTPException(404, f"unknown prompt {name!r}")
        return [LabelMoveOut.of(m) for m in await _store(request).label_history(name)]

    @app.get("/prompts/{name:path}/diff", response_class=PlainTextResponse)
    async def diff(
        request: Request,
        name: str,
        old: Annotated[int, Query(alias="from", ge=1)],
        new: Annotated[int, Query(alias="to", ge=1)],
    ) -> str:
        """Unified diff of two versions' canonical YAML sources."""
        return await management.diff(_store(request), name, old, new)

    @app.get("/prompts/{ref:path}")
    async def show(request: Request, ref: str) -> VersionOut:
        """The version a reference names: NAME (production label), NAME@LABEL or NAME:VERSION."""
        found = await management.show(_store(request), ref)
        return VersionOut.of(found.version, found.label)

    @app.post("/render")
    async def render_prompt(request: Request, body: RenderIn) -> RenderOut:
        """Render as a request would (422 with the rejection reason when a request would be rejected)."""
        p = await management.preview(
            _store(request),
            body.prompt,
            body.variables,
            body.messages,
            subject=body.user_id,
            params=body.params,
            retrieval=body.retrieval,
            model=body.model,
        )
        return RenderOut(
            prompt_name=p.version.name,
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
    async def list_experiments(request: Request) -> list[Experiment]:
        """Every running experiment."""
        return await _store(request).experiments()

    @app.get("/experiments/{prompt:path}")
    async def get_experiment(request: Request, prompt: str) -> Experiment:
        """The experiment on a prompt."""
        found = await _store(request).experiment(prompt)
        if found is None:
            raise HTTPException(404, f"no experiment runs on prompt {prompt!r}")
        return found

    @app.put("/experiments/{prompt:path}")
    async def put_experiment(
        request: Request, prompt: str, body: Annotated[ExperimentIn, Body()]
    ) -> Experiment:
        """Start or replace the prompt's experiment; every arm must resolve."""
        try:
            experiment = Experiment(name=body.name, prompt=prompt, label=body.label, variants=body.variants)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return await management.set_experiment(_store(request), experiment, body.by)

    @app.delete("/experiments/{prompt:path}", status_code=204)
    async def delete_experiment(request: Request, prompt: str) -> None:
        """Stop the prompt's experiment."""
        await management.clear_experiment(_store(request), prompt)

    return app
