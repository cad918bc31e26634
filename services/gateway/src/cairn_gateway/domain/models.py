"""`GET /v1/models`: the prompts and registry models a client can name in `model`, in OpenAI's list shape."""

from __future__ import annotations

from typing import Any

from cairn_gateway.domain.mapping import MODEL_PREFIX, PROMPT_PREFIX


def _entry(model_id: str, owner: str, **cairn: Any) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owner, "cairn": cairn}


def model_list(
    prompts: list[dict[str, Any]], models: list[dict[str, Any]], default_prompt: str
) -> dict[str, Any]:
    """One entry per prompt (its bare name: its production label), per prompt label
    (`prompt:<name>@<label>`), per registry model (`model:<name>`: its production version), its staging
    version (`model:<name>@staging`) and per version (`model:<name>:<n>`)."""
    data: list[dict[str, Any]] = []
    for p in prompts:
        name, tenant = str(p.get("name")), str(p.get("tenant", "default"))
        labels: dict[str, int] = p.get("labels") or {}
        data.append(
            _entry(
                name,
                tenant,
                kind="prompt",
                prompt=name,
                version=labels.get("production"),
                default=name == default_prompt,
            )
        )
        for label, version in sorted(labels.items()):
            data.append(
                _entry(
                    f"{PROMPT_PREFIX}{name}@{label}",
                    tenant,
                    kind="prompt",
                    prompt=name,
                    label=label,
                    version=version,
                )
            )
    for m in models:
        name = str(m.get("name"))
        production = m.get("production")
        data.append(
            _entry(
                f"{MODEL_PREFIX}{name}",
                "cairn",
                kind="model",
                model=name,
                version=production,
                stage="production",
            )
        )
        staging = m.get("staging") or []
        if staging:
            data.append(
                _entry(
                    f"{MODEL_PREFIX}{name}@staging",
                    "cairn",
                    kind="model",
                    model=name,
                    version=max(staging),
                    stage="staging",
                )
            )
        for v in m.get("versions") or []:
            number = v.get("version")
            data.append(
                _entry(
                    f"{MODEL_PREFIX}{name}:{number}",
                    "cairn",
                    kind="model",
                    model=name,
                    version=number,
                    stage=v.get("stage"),
                )
            )
    return {"object": "list", "data": data}
