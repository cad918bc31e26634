"""Backward-compatibility check between two versions of an event's JSON Schema.

Backward compatible means: every payload valid under the old schema is still valid under
the new one, so consumers on the new schema read everything already published. For our
strict models (no extra fields) that makes these changes breaking: removing a field, adding
a required field, making a field required, changing a type (integer → number widening is
fine), removing an enum value, narrowing a constraint (bounds, lengths, patterns, formats,
extra properties). Adding an optional field, widening a constraint and adding an enum
value are fine.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["check_backward"]

JsonSchema = dict[str, Any]
_ANY: JsonSchema = {}


def check_backward(old_schema: JsonSchema, new_schema: JsonSchema) -> list[str]:
    """The breaking changes from `old_schema` to `new_schema`, as readable messages (empty if none)."""
    version = _version(old_schema)
    advice = f"publish a new version (v{version + 1}) beside v{version} instead"
    problems: list[str] = []
    _Comparison(old_schema, new_schema, problems).compare(old_schema, new_schema, "")
    return [f"{where or '(payload)'}: {what}; {advice}" for where, what in _unique(problems)]


def _version(schema: JsonSchema) -> int:
    for text, pattern in ((schema.get("$id"), r":v(\d+)$"), (schema.get("title"), r"V(\d+)$")):
        if isinstance(text, str) and (match := re.search(pattern, text)):
            return int(match.group(1))
    return 1


def _unique(problems: list[Any]) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for problem in problems:
        seen.setdefault(problem, None)
    return list(seen)


def _kind(node: JsonSchema) -> str | None:
    """The JSON type a (single-branch) schema node accepts; None when it accepts any type."""
    declared = node.get("type")
    if isinstance(declared, str):
        return declared
    values = node["enum"] if "enum" in node else [node["const"]] if "const" in node else None
    if values:
        kinds = {_value_kind(value) for value in values}
        return kinds.pop() if len(kinds) == 1 else None
    if "properties" in node or "additionalProperties" in node:
        return "object"
    if "items" in node:
        return "array"
    return None


def _value_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _accepts(new_kind: str | None, old_kind: str | None) -> bool:
    if new_kind is None:
        return True
    return new_kind == old_kind or (new_kind == "number" and old_kind == "integer")


class _Comparison:
    """One old/new schema pair; nodes are compared with their own document's `$defs`."""

    def __init__(self, old_root: JsonSchema, new_root: JsonSchema, problems: list[Any]) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.problems = problems
        self.active: set[tuple[int, int]] = set()

    def report(self, path: str, what: str) -> None:
        self.problems.append((path, what))

    # -- structure --------------------------------------------------------------------------
    def resolve(self, node: Any, root: JsonSchema) -> JsonSchema:
        if node is True or node is None:
            return _ANY
        if node is False:
            return {"not": {}}
        resolved: JsonSchema = dict(node)
        for _ in range(64):
            ref = resolved.pop("$ref", None)
            if not isinstance(ref, str):
                break
            target = _pointer(root, ref)
            resolved = {**target, **resolved}
        return resolved

    def branches(self, node: Any, root: JsonSchema) -> list[JsonSchema]:
        resolved = self.resolve(node, root)
        for keyword in ("anyOf", "oneOf"):
            if keyword in resolved:
                rest = {k: v for k, v in resolved.items() if k != keyword}
                out: list[JsonSchema] = []
                for branch in resolved[keyword]:
                    out.extend(self.branches({**rest, **self.resolve(branch, root)}, root))
                return out
        declared = resolved.get("type")
        if isinstance(declared, list):
            return [{**resolved, "type": kind} for kind in declared]
        return [resolved]

    def compare(self, old: Any, new: Any, path: str) -> None:
        old_branches = self.branches(old, self.old_root)
        new_branches = self.branches(new, self.new_root)
        for old_branch in old_branches:
            if "not" in old_branch and old_branch["not"] == {}:
                continue  # the old schema accepted nothing here
            old_kind = _kind(old_branch)
            candidates = [b for b in new_branches if _accepts(_kind(b), old_kind)]
            if not candidates:
                self.report(
                    path,
                    f"type changed from {_describe(old_branches)} to {_describe(new_branches)} "
                    f"({old_kind or 'any'} values no longer accepted)",
                )
                continue
            best: list[Any] | None = None
            for candidate in candidates:
                found: list[Any] = []
                sub = _Comparison(self.old_root, self.new_root, found)
                sub.active = self.active
                sub.compare_node(old_branch, candidate, path)
                if not found:
                    best = []
                    break
                if best is None:
                    best = found
            self.problems.extend(best or [])

    # -- one branch against one branch of a compatible type ---------------------------------
    def compare_node(self, old: JsonSchema, new: JsonSchema, path: str) -> None:
        token = (id(old), id(new))
        if token in self.active:
            return
        self.active.add(token)
        try:
            self.compare_values(old, new, path)
            self.compare_bounds(old, new, path)
            kind = _kind(old)
            if kind == "object" or (kind is None and "properties" in new):
                self.compare_objects(old, new, path)
            if kind == "array" or (kind is None and "items" in new):
                self.compare(old.get("items", True), new.get("items", True), f"{path}[]")
        finally:
            self.active.discard(token)

    def compare_values(self, old: JsonSchema, new: JsonSchema, path: str) -> None:
        old_values = _allowed(old)
        new_values = _allowed(new)
        if new_values is None:
            return
        if old_values is None:
            self.report(path, f"now restricted to the values {new_values!r}")
            return
        removed = [value for value in old_values if value not in new_values]
        if removed:
            self.report(path, f"enum value(s) removed: {removed!r}")

    def compare_bounds(self, old: JsonSchema, new: JsonSchema, path: str) -> None:
        old_low, new_low = _lower(old), _lower(new)
        if new_low is not None and (old_low is None or new_low > old_low):
            self.report(path, f"lower bound raised from {_bound(old_low)} to {_bound(new_low)}")
        old_high, new_high = _upper(old), _upper(new)
        if new_high is not None and (old_high is None or new_high < old_high):
            self.report(path, f"upper bound lowered from {_bound(old_high)} to {_bound(new_high)}")
        for low_key, high_key, what in (
            ("minLength", "maxLength", "length"),
            ("minItems", "maxItems", "item count"),
            ("minProperties", "maxProperties", "property count"),
        ):
            if new.get(low_key, 0) > old.get(low_key, 0):
                self.report(path, f"minimum {what} raised from {old.get(low_key, 0)} to {new[low_key]}")
            if high_key in new and new[high_key] < old.get(high_key, float("inf")):
                self.report(
                    path, f"maximum {what} lowered from {old.get(high_key, 'none')} to {new[high_key]}"
                )
        for keyword in ("pattern", "format"):
            if keyword in new and new[keyword] != old.get(keyword):
                self.report(path, f"{keyword} changed from {old.get(keyword)!r} to {new[keyword]!r}")
        if "multipleOf" in new and not _divides(new["multipleOf"], old.get("multipleOf")):
            self.report(path, f"multipleOf changed from {old.get('multipleOf')} to {new['multipleOf']}")
        if new.get("uniqueItems") and not old.get("uniqueItems"):
            self.report(path, "items must now be unique")

    def compare_objects(self, old: JsonSchema, new: JsonSchema, path: str) -> None:
        old_props: JsonSchema = old.get("properties", {})
        new_props: JsonSchema = new.get("properties", {})
        old_required = set(old.get("required", []))
        new_required = set(new.get("required", []))
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        for name in old_props:
            where = _join(path, name)
            if name not in new_props:
                self.report(where, "field removed")
                continue
            if name in new_required and name not in old_required:
                self.report(where, "field became required")
            self.compare(old_props[name], new_props[name], where)
        for name in new_props:
            if name in old_props:
                continue
            where = _join(path, name)
            if name in new_required:
                self.report(where, "required field added")
            elif old_extra is not False:
                self.compare(old_extra, new_props[name], where)  # old payloads may carry it already
        for name in sorted(new_required - set(new_props) - old_required):
            self.report(_join(path, name), "required field added")
        if new_extra is False:
            if old_extra is not False:
                self.report(path, "extra properties no longer accepted")
        elif old_extra is not False:
            self.compare(old_extra, new_extra, _join(path, "*"))


def _pointer(root: JsonSchema, ref: str) -> JsonSchema:
    if not ref.startswith("#"):
        raise ValueError(f"only local $refs are supported, not {ref!r}")
    node: Any = root
    for part in filter(None, ref[1:].split("/")):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return dict(node)


def _allowed(node: JsonSchema) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    if "enum" in node:
        return list(node["enum"])
    return None


def _lower(node: JsonSchema) -> tuple[float, int] | None:
    """The lower bound as (value, 0 inclusive / 1 exclusive), so tuples order by tightness."""
    bounds = [(float(node["minimum"]), 0)] if "minimum" in node else []
    if "exclusiveMinimum" in node:
        bounds.append((float(node["exclusiveMinimum"]), 1))
    return max(bounds) if bounds else None


def _upper(node: JsonSchema) -> tuple[float, int] | None:
    """The upper bound as (value, 0 exclusive / 1 inclusive), so tuples order by looseness."""
    bounds = [(float(node["maximum"]), 1)] if "maximum" in node else []
    if "exclusiveMaximum" in node:
        bounds.append((float(node["exclusiveMaximum"]), 0))
    return min(bounds) if bounds else None


def _bound(bound: tuple[float, int] | None) -> str:
    return "none" if bound is None else f"{bound[0]:g}"


def _divides(new_step: float, old_step: float | None) -> bool:
    if old_step is None:
        return False
    ratio = old_step / new_step
    return abs(ratio - round(ratio)) < 1e-9


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _describe(branches: list[JsonSchema]) -> str:
    return "|".join(sorted({_kind(branch) or "any" for branch in branches}))
