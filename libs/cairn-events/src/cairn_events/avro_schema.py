"""Avro schema (`.avsc`) of an event model, converted from the pydantic model.

Mapping: str → string; int → long; float → double; bool → boolean; datetime → string
(RFC 3339); `X | None` → `["null", X]` with default null; str enums and `Literal`s → Avro
enums; nested models → named records; `dict[str, X]` → map; `list[X]` → array; unions of
scalars → Avro unions. Each named type is defined once per schema, then referenced by name.
Constraints Avro cannot express (patterns, ranges, lengths) are written into the field's doc.
"""

from __future__ import annotations

import inspect
import types
import typing
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from cairn_events.base import Event
from cairn_events.registry import schema_family

__all__ = ["avro_schema"]

_PRIMITIVES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),  # before int: bool is an int subclass
    (int, "long"),
    (float, "double"),
    (str, "string"),
)
_CONSTRAINTS: tuple[tuple[str, str], ...] = (
    ("pattern", "pattern"),
    ("format", "format"),
    ("minimum", "minimum"),
    ("exclusiveMinimum", "exclusive minimum"),
    ("maximum", "maximum"),
    ("exclusiveMaximum", "exclusive maximum"),
    ("minLength", "min length"),
    ("maxLength", "max length"),
    ("minItems", "min items"),
    ("maxItems", "max items"),
)
_TIMESTAMP_DOC = "RFC 3339 date-time string with offset, e.g. `2025-03-01T12:00:00Z`."


def avro_schema(event_cls: type[Event]) -> dict[str, Any]:
    """The Avro record schema of an event's payload, namespace `cairn.<thing>`, docs from descriptions."""
    namespace = ".".join(schema_family(event_cls.event_type).split(".")[:2])
    record = _Converter().record(event_cls)
    assert isinstance(record, dict)
    return {"namespace": namespace, **record}


def _doc(obj: type) -> str:
    return inspect.cleandoc(obj.__doc__ or obj.__name__)


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _constraint_doc(prop: dict[str, Any]) -> str:
    """Constraints of a JSON Schema property in words, looking into unions, items and map values."""
    found: list[str] = []

    def collect(node: dict[str, Any], prefix: str) -> None:
        for keyword, words in _CONSTRAINTS:
            if keyword in node and not (keyword == "format" and node[keyword] == "date-time"):
                found.append(f"{prefix}{words} {node[keyword]}")
        for branch in node.get("anyOf", []):
            collect(branch, prefix)
        if isinstance(node.get("items"), dict):
            collect(node["items"], prefix + "each item: ")
        if isinstance(node.get("additionalProperties"), dict):
            collect(node["additionalProperties"], prefix + "each value: ")

    collect(prop, "")
    return f" Constraints: {'; '.join(found)}." if found else ""


class _Converter:
    """Converts one model tree, remembering which named types it already defined."""

    def __init__(self) -> None:
        self.defined: set[str] = set()

    def record(self, model: type[BaseModel]) -> dict[str, Any] | str:
        name = model.__name__
        if name in self.defined:
            return name
        self.defined.add(name)
        props = model.model_json_schema(mode="validation").get("properties", {})
        fields = [
            self.field(model, field_name, info, props.get(field_name, {}))
            for field_name, info in model.model_fields.items()
        ]
        return {"type": "record", "name": name, "doc": _doc(model), "fields": fields}

    def field(
        self, model: type[BaseModel], name: str, info: FieldInfo, prop: dict[str, Any]
    ) -> dict[str, Any]:
        annotation: Any = info.annotation
        avro_type = self.convert(annotation, f"{model.__name__}{_pascal(name)}", info.description or name)
        doc = (info.description or name) + _constraint_doc(prop)
        if _mentions_timestamp(annotation) and "RFC 3339" not in doc:
            doc += " " + _TIMESTAMP_DOC
        out: dict[str, Any] = {"name": name, "doc": doc, "type": avro_type}
        if not info.is_required():
            default = TypeAdapter[Any](annotation).dump_python(
                info.get_default(call_default_factory=True), mode="json"
            )
            if isinstance(avro_type, list) and "null" in avro_type and default is not None:
                avro_type.remove("null")
                avro_type.append("null")  # an Avro union's default must match its first branch
            out["default"] = default
        return out

    def convert(self, tp: Any, enum_name: str, enum_doc: str) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is Annotated:
            return self.convert(args[0], enum_name, enum_doc)
        if tp is type(None):
            return "null"
        if origin in (typing.Union, types.UnionType):
            branches: list[Any] = []
            if type(None) in args:
                branches.append("null")
            for arg in args:
                if arg is type(None):
                    continue
                converted = self.convert(arg, enum_name, enum_doc)
                branches.extend(converted if isinstance(converted, list) else [converted])
            return branches
        if origin is Literal:
            if enum_name in self.defined:
                return enum_name
            self.defined.add(enum_name)
            return {"type": "enum", "name": enum_name, "doc": enum_doc, "symbols": [str(a) for a in args]}
        if origin is list:
            return {"type": "array", "items": self.convert(args[0], enum_name + "Item", enum_doc)}
        if origin is dict:
            if args[0] is not str:
                raise TypeError(f"Avro maps need string keys, not {args[0]!r}")
            return {"type": "map", "values": self.convert(args[1], enum_name + "Value", enum_doc)}
        if isinstance(tp, type):
            if issubclass(tp, BaseModel):
                return self.record(tp)
            if issubclass(tp, Enum):
                if tp.__name__ in self.defined:
                    return tp.__name__
                self.defined.add(tp.__name__)
                symbols = [str(member.value) for member in tp]
                return {"type": "enum", "name": tp.__name__, "doc": _doc(tp), "symbols": symbols}
            if _is_timestamp(tp):
                return "string"
            for python_type, avro_name in _PRIMITIVES:
                if issubclass(tp, python_type):
                    return avro_name
        raise TypeError(f"no Avro mapping for {tp!r}")


def _is_timestamp(tp: Any) -> bool:
    return tp is AwareDatetime or (isinstance(tp, type) and issubclass(tp, datetime))


def _mentions_timestamp(tp: Any) -> bool:
    return _is_timestamp(tp) or any(_mentions_timestamp(arg) for arg in typing.get_args(tp))
