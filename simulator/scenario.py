"""The scenario schema (single source of truth for fields, defaults and their docs) and the
validating front door: `load_scenario(path)` / `parse_scenario(data)`.

Units are in the field names; times inside the engine are seconds.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .arrivals import ArrivalProcess
from .distributions import Distribution, LogNormal
from .errors import ScenarioError, ScenarioErrors
from .keepalive import Fixed, KeepAlivePolicy
from .selection import Selection

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Platform(_Model):
    """How the platform manages instances (execution environments)."""

    keep_alive: KeepAlivePolicy = Field(
        default_factory=lambda: Fixed(policy="fixed"),
        description="When an idle instance is evicted. `{policy: fixed, idle_s: 360}` by default.",
    )
    idle_selection: Selection = Field(
        "newest",
        description=(
            "Which idle instance serves a request: newest (created most recently), mru (most "
            "recently finished), lru (least recently finished) or random. Default newest: the "
            "rule of SimFaaS (Mahmoudi & Khazaei, 2021), derived from AWS Lambda measurements; "
            "it lets older instances drain and expire."
        ),
    )
    max_lifetime_s: float | None = Field(
        7200.0,
        gt=0,
        description=(
            "Retire an instance this long after its creation, once it is idle (a busy one "
            "finishes its request first); null = never. Default 7200 s: AWS says it terminates "
            "environments 'every few hours' even when busy, measured at about 2 h "
            "(shared/reference/lambda-facts.md L5, K4)."
        ),
    )


class Function(_Model):
    """One serverless function: its size, its cold-start and handler times, its traffic."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique name (letters, digits, . _ -).")
    memory_mb: int = Field(
        128,
        ge=128,
        le=10240,
        description=(
            "Configured memory, in MB (128-10,240, AWS's range and its default 128 MB; "
            "lambda-facts.md L7). Sets the GB-s of busy and idle time."
        ),
    )
    init: Distribution = Field(
        default_factory=lambda: LogNormal(dist="lognormal", median_ms=89.0, sigma=0.14),
        description=(
            "Cold-start init time (runtime start plus global state built outside the handler), "
            "paid once per instance, in ms. Default lognormal median 89 ms, sigma 0.14: "
            "python3.12 hello world at 512 MB (maxday/lambda-perf, 2026; lambda-facts.md §5). "
            "Add your own global-state init cost on top."
        ),
    )
    duration: Distribution = Field(description="Handler execution time per request, in ms.")
    arrivals: ArrivalProcess = Field(description="The function's request arrival process.")


class Scenario(_Model):
    """A simulation: the platform, the functions and the time span."""

    name: str = Field(pattern=NAME_PATTERN, description="Names the output folder results/<name>/.")
    seed: int = Field(0, ge=0, description="Drives every random stream of the run.")
    duration_s: float = Field(gt=0, description="Arrivals are generated in [0, duration_s), in s.")
    warmup_s: float = Field(
        0.0, ge=0, description="Arrivals before this time (s) are simulated but not counted."
    )
    platform: Platform = Field(
        default_factory=Platform, description="Keep-alive, instance selection and recycling."
    )
    functions: list[Function] = Field(min_length=1, description="The functions to simulate.")

    @model_validator(mode="after")
    def _consistent(self):
        if self.warmup_s >= self.duration_s:
            raise ValueError(
                f"warmup_s ({self.warmup_s}) must be less than duration_s ({self.duration_s})"
            )
        seen: set[str] = set()
        for f in self.functions:
            if f.name in seen:
                raise ValueError(f"function names must be unique: {f.name!r} appears twice")
            seen.add(f.name)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON types), with every default filled in."""
        return self.model_dump(mode="json")

    def updated(self, overrides: Mapping[str, Any]) -> Scenario:
        """A validated copy with dotted-path fields replaced.

        Example: `scenario.updated({"platform.keep_alive.idle_s": 60})`."""
        data = self.to_dict()
        for path, value in overrides.items():
            set_path(data, path, value)
        return parse_scenario(data)


# --- the front door ----------------------------------------------------------------------------


def load_scenario(
    path: str | Path,
    overrides: Iterable[str] = (),
    *,
    seed: int | None = None,
    duration_s: float | None = None,
) -> Scenario:
    """Read and validate a YAML scenario. `overrides` are "dotted.path=value" strings (the value
    is parsed as YAML); seed and duration_s replace the file's values."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ScenarioError("scenario file not found", file=file) from None
    except OSError as err:
        raise ScenarioError(f"cannot read scenario: {err.strerror}", file=file) from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ScenarioError(f"malformed YAML: {where}{err.problem}", file=file) from None
    except yaml.YAMLError as err:
        raise ScenarioError(f"malformed YAML: {err}", file=file) from None
    if not isinstance(data, dict):
        raise ScenarioError("the top level must be a mapping of scenario fields", file=file)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ScenarioError(f"--set {item!r}: expected dotted.path=value", file=file)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        try:
            set_path(data, key.strip(), value)
        except ScenarioError as err:
            raise ScenarioError(err.message, file=file, field=f"--set {key.strip()}") from None
    if seed is not None:
        data["seed"] = seed
    if duration_s is not None:
        data["duration_s"] = duration_s
    return parse_scenario(data, base_dir=path.parent, file=file)


def parse_scenario(
    data: Mapping[str, Any], *, base_dir: str | Path | None = None, file: str | None = None
) -> Scenario:
    """Validate plain data. Relative trace paths are resolved against base_dir."""
    try:
        return Scenario.model_validate(dict(data), context={"base_dir": base_dir})
    except ValidationError as err:
        problems = [_problem(e, data, file) for e in err.errors()]
        raise (problems[0] if len(problems) == 1 else ScenarioErrors(problems)) from None


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set data[a][b][0][c] = value for "a.b.0.c", creating missing mappings."""
    parts = dotted.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not re.fullmatch(r"\d+", part) or int(part) >= len(node):
                raise ScenarioError(f"{part!r} is not an index of a list of {len(node)} items")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        else:
            raise ScenarioError(f"cannot set {part!r} inside a {type(node).__name__} value")
    if not parts:
        raise ScenarioError("empty path")


# --- error messages ----------------------------------------------------------------------------


def _problem(error: Mapping[str, Any], data: Any, file: str | None) -> ScenarioError:
    """Turn one pydantic error into a message naming the field path as the user wrote it."""
    field, node_model, node_type = _field_path(error["loc"], data)
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(node_model.model_fields) if node_model else "see `coldsim schema`"
        message = f"unknown field (allowed here: {allowed})"
    elif kind == "missing":
        message = "required field is missing"
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
    else:
        message = error["msg"].removeprefix("Value error, ")
        if kind not in ("value_error", "assertion_error") and "input" in error:
            message += f" (got {error['input']!r})"
    return ScenarioError(message, file=file, field=field or None)


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
            model = _item_type(model)
            continue
        if isinstance(node, dict) and seg not in node and _is_tag(seg, node, model):
            model = _union_member(model, seg)
            continue
        out += f".{seg}" if out else str(seg)
        owner = model if isinstance(model, type) and issubclass(model, BaseModel) else None
        node = node.get(seg) if isinstance(node, dict) else None
        model = _field_type(model, seg)
    return out, owner, model


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _members(tp: Any) -> tuple:
    tp = _strip(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return tuple(_strip(a) for a in typing.get_args(tp) if a is not type(None))
    return (tp,)


def _field_type(model: Any, name: str) -> Any:
    for member in _members(model):
        if isinstance(member, type) and issubclass(member, BaseModel):
            field = member.model_fields.get(name)
            if field is not None:
                return field.annotation
    return None


def _item_type(tp: Any) -> Any:
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


def _union_member(model: Any, tag: Any) -> Any:
    for member in _members(model):
        if str(tag) in _tags(member):
            return member
    return model
