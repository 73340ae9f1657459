"""Error wording: a pydantic error becomes one message naming the file and the field path as
the user wrote it (`functions[0].init.median_ms`), with what is allowed there."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, Tag

from ..errors import ScenarioError
from ..policies.base import PluginField, concrete
from .schema import BRANCH_TAGS, Scenario


def problem(error: Mapping[str, Any], data: Any, file: str | None) -> ScenarioError:
    """Turn one pydantic error into a message naming the field path as the user wrote it."""
    field, node_model, node_type = _field_path(error["loc"], data)
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = (
            ", ".join(f.alias or k for k, f in node_model.model_fields.items())
            if node_model
            else "see `coldsim schema`"
        )
        message = f"unknown field (allowed here: {allowed})"
    elif kind == "missing":
        message = "required field is missing"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        got = repr(error.get("input"))
        if "dist" in _tags_here(node_type):
            unit = "s" if _unit_of(node_type) == "s" else "ms"
            message = f"must be a distribution, e.g. {{dist: constant, value_{unit}: 5}}"
        else:
            message = "must be a mapping of fields (see `coldsim schema`)"
        message += f" (got {got if len(got) <= 60 else got[:57] + '...'})"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        ctx = error.get("ctx", {})
        tag = str(ctx.get("discriminator", "")).strip("'")
        field = f"{field}.{tag}" if field else tag
        allowed = ", ".join(repr(t) for m in _members(node_type) for t in sorted(_tags(m)))
        message = (
            f"unknown {tag} {ctx.get('tag')!r} (allowed: {allowed})"
            if kind == "union_tag_invalid"
            else f"required field is missing (one of: {allowed})"
        )
    elif _not_finite(error.get("input")) and kind in BOUND_ERRORS:
        message = f"must be a finite number (got {error['input']!r})"
    else:
        message = error["msg"].removeprefix("Value error, ")
        if kind not in ("value_error", "assertion_error") and "input" in error:
            got = repr(error["input"])
            message += f" (got {got if len(got) <= 60 else got[:57] + '...'})"
        # A list's validator names the item itself ("[1].name 'api' repeats ..."): one path,
        # functions[1].name, as everywhere else.
        item = ITEM_PATH.match(message) if field else None
        if item:
            field += item.group(1)
            message = item.group(2).removeprefix(":").strip()
        whole = ROOT_PATH.match(message) if not field else None  # the scenario's own checks
        if whole:
            field, message = whole.group(1), whole.group(2)
    return ScenarioError(message, file=file, field=field or None)


#: pydantic's error types of a bound (gt, ge, lt, le): a nan fails them all.
BOUND_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def _not_finite(value: Any) -> bool:
    return isinstance(value, float) and value != value


#: A path from the scenario's top at the start of a message: "platform.connection_limits.db: ".
ROOT_PATH = re.compile(r"^((?:platform|functions)(?:\.[A-Za-z_][\w-]*|\[\d+\])+): (.*)$", re.S)

#: "[i]" and what follows it of a path at the start of a message: "[0].calls[1].function".
ITEM_PATH = re.compile(r"^(\[\d+\](?:\.[A-Za-z_]\w*|\[\d+\])*)[: ]\s*(.*)$", re.S)


def _field_path(loc: tuple, data: Any) -> tuple[str, type[BaseModel] | None, Any]:
    """Render loc as `functions[0].init.median_ms`, skipping the discriminator tags pydantic puts
    in it; also return the model class that owns the last segment (for listing allowed keys)
    and the type expected at loc."""
    out = ""
    node, model = data, Scenario
    owner: type[BaseModel] | None = Scenario
    for seg in loc:
        if isinstance(seg, int) and isinstance(node, list):
            out += f"[{seg}]"
            node = node[seg] if seg < len(node) else None
            model = concrete(item_type(model), node)
            continue
        if seg == "classes" and isinstance(node, list):  # hosts written as their classes
            model = field_type(model, seg)
            continue
        if seg in BRANCH_TAGS and not (isinstance(node, dict) and seg in node):
            model = _branch(model, seg)
            continue
        if isinstance(node, dict) and seg not in node and _is_tag(seg, node, model):
            model = _union_member(model, seg)
            continue
        out += f".{seg}" if out else str(seg)
        owner = model if isinstance(model, type) and issubclass(model, BaseModel) else None
        node = node.get(seg) if isinstance(node, dict) else None
        model = concrete(field_type(model, seg), node)
    return out, owner, model


def _tags_here(tp: Any) -> set[str]:
    """The names of the discriminator fields of the members of a union type."""
    out: set[str] = set()
    for member in _members(tp):
        if isinstance(member, type) and issubclass(member, BaseModel):
            out.update(k for k, f in member.model_fields.items()
                       if typing.get_origin(f.annotation) is typing.Literal)  # fmt: skip
    return out


def _unit_of(tp: Any) -> str:
    """'s' or 'ms': the unit of a distribution family's parameters."""
    for member in _members(tp):
        if isinstance(member, type) and issubclass(member, BaseModel):
            aliases = [f.alias or k for k, f in member.model_fields.items()]
            if any(a.endswith("_s") for a in aliases):
                return "s"
    return "ms"


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _members(tp: Any) -> tuple:
    """The non-None members of a (possibly nested, annotated) union, or (tp,)."""
    tp = _strip(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return tuple(m for a in typing.get_args(tp) if a is not type(None) for m in _members(a))
    return (tp,)


def field_type(model: Any, name: str) -> Any:
    for member in _members(model):
        if isinstance(member, type) and issubclass(member, BaseModel):
            for key, field in member.model_fields.items():
                if (field.alias or key) == name:
                    plugin = [m for m in field.metadata if isinstance(m, PluginField)]
                    return Annotated[field.annotation, *plugin] if plugin else field.annotation
    return None


def default_data(model: Any, name: str) -> dict[str, Any]:
    """The schema's default of field `name` of `model` as plain data, if it is a mapping
    (a model); else an empty mapping."""
    for member in _members(model):
        if isinstance(member, type) and issubclass(member, BaseModel):
            for key, field in member.model_fields.items():
                if (field.alias or key) == name:
                    value = field.get_default(call_default_factory=True)
                    if isinstance(value, BaseModel):
                        return value.model_dump(mode="json", by_alias=True)
    return {}


def item_type(tp: Any) -> Any:
    tp = _strip(tp)
    args = typing.get_args(tp)
    return args[0] if typing.get_origin(tp) is list and args else None


def _tags(member: Any) -> set[str]:
    if not (isinstance(member, type) and issubclass(member, BaseModel)):
        return set()
    tags: set[str] = set()
    for field in member.model_fields.values():
        if typing.get_origin(field.annotation) is typing.Literal:
            tags.update(str(a) for a in typing.get_args(field.annotation))
    return tags


def _is_tag(seg: Any, node: dict, model: Any) -> bool:
    return any(str(seg) in _tags(m) for m in _members(model))


def _branch(model: Any, tag: str) -> Any:
    """The member of a number_or() union carrying Tag(tag)."""
    tp = _strip(model)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if typing.get_origin(arg) is Annotated and any(
                isinstance(m, Tag) and m.tag == tag for m in typing.get_args(arg)[1:]
            ):
                return typing.get_args(arg)[0]
            inner = _branch(arg, tag) if arg is not type(None) else None
            if inner is not None and inner is not arg:
                return inner
    return None


def _union_member(model: Any, tag: Any) -> Any:
    for member in _members(model):
        if str(tag) in _tags(member):
            return member
    return model
