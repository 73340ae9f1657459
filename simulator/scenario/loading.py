"""The validating front door: `load_scenario(path)` reads YAML safely, applies `--set`
overrides, expands a trace `workload:` into functions and validates against the schema;
`parse_scenario(data)` does the same for plain data.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ScenarioError, ScenarioErrors
from ..policies.base import concrete
from ..workload.expansion import Workload
from .schema import Scenario
from .validation import default_data, field_type, item_type, problem


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML would silently
    keep the last: a typo-level mistake that changes the scenario)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: the constructor says so below
                continue
            if first != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} repeats the one on line {first}",
                    key_node.start_mark,
                )  # fmt: skip
        return super().construct_mapping(node, deep)


def load_scenario(
    path: str | Path,
    overrides: Iterable[str] | Mapping[str, Any] = (),
    *,
    seed: int | None = None,
    duration_s: float | None = None,
    allow_import: bool = False,
    **fields: Any,
) -> Scenario:
    """Read and validate a YAML scenario. `overrides` are "dotted.path=value" strings (the value
    is parsed as YAML, as `--set` does) or a mapping {dotted.path: value}; keywords set fields
    too (`warmup_s=0`, or `**{"platform.keep_alive.idle_s": 60}`), and seed and duration_s
    replace the file's values. Every override is applied to the file's data before it is
    validated, so fields that must agree change together (a shorter duration_s with a
    smaller warmup_s). `allow_import` lets the scenario name plug-in classes in modules not
    imported yet (it runs their code)."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ScenarioError("scenario file not found", file=file) from None
    except UnicodeDecodeError as err:
        raise ScenarioError(f"not UTF-8 text (byte {err.start})", file=file) from None
    except IsADirectoryError:
        hint = " (a run's folder? its scenario is scenario.yaml inside)"
        hint = hint if (path / "scenario.yaml").is_file() else ""
        raise ScenarioError(f"a folder, not a scenario file{hint}", file=file) from None
    except OSError as err:
        raise ScenarioError(f"cannot read scenario: {err.strerror}", file=file) from None
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # safe: a SafeLoader
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ScenarioError(f"malformed YAML: {where}{err.problem}", file=file) from None
    except (yaml.YAMLError, RecursionError) as err:
        raise ScenarioError(f"malformed YAML: {err}", file=file) from None
    if not isinstance(data, dict):
        raise ScenarioError("the top level must be a mapping of scenario fields", file=file)
    if isinstance(overrides, str):  # one "path=value", not its characters
        overrides = [overrides]
    given: list[tuple[str, Any, str]] = []  # (path, value, how the user named it)
    if isinstance(overrides, Mapping):
        given += [(str(k), v, str(k)) for k, v in overrides.items()]
    else:
        for item in overrides:
            key, sep, raw = str(item).partition("=")
            if not sep or not key.strip():
                raise ScenarioError(f"override {item!r}: expected dotted.path=value", file=file)
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError:
                value = raw
            given.append((key.strip(), value, f"--set {key.strip()}"))
    given += [(k, v, k) for k, v in fields.items()]
    given += [(k, v, k) for k, v in (("seed", seed), ("duration_s", duration_s)) if v is not None]
    for key, value, named in given:
        try:
            set_path(data, key, value)
        except ScenarioError as err:
            raise ScenarioError(err.message, file=file, field=named) from None
    return parse_scenario(data, base_dir=path.parent, file=file, allow_import=allow_import)


def parse_scenario(
    data: Mapping[str, Any],
    *,
    base_dir: str | Path | None = None,
    file: str | None = None,
    allow_import: bool = False,
) -> Scenario:
    """Validate plain data. Relative trace paths are resolved against base_dir; plug-in
    modules not imported yet are imported only with `allow_import`."""
    context = {"base_dir": base_dir, "allow_import": allow_import}
    data = dict(data)
    template: tuple[int, set[str]] | None = None  # (first generated function, its keys)
    if data.get("workload") is not None:
        explicit = data.get("functions")
        first = len(explicit) if isinstance(explicit, list) else 0
        workload = data["workload"] if isinstance(data["workload"], dict) else {}
        keys = workload.get("function")
        template = (first, set(keys) if isinstance(keys, dict) else set())
        data = _expand_workload(data, context, file)
    try:
        scenario = Scenario.model_validate(data, context=context)
    except ValidationError as err:
        problems = _once_per_field([problem(e, data, file) for e in err.errors()], template)
        raise (problems[0] if len(problems) == 1 else ScenarioErrors(problems)) from None
    scenario._origin = {"base_dir": base_dir, "file": file, "allow_import": allow_import}
    scenario._front_door = updated
    return scenario


def updated(scenario: Scenario, overrides: Mapping[str, Any]) -> Scenario:
    """Scenario.updated: the scenario's data with dotted paths set, validated again with the
    keywords that validated it (its file aside)."""
    data = scenario.to_dict()
    for path, value in overrides.items():
        set_path(data, path, value)
    return parse_scenario(data, **{**scenario.origin(), "file": None})


def _once_per_field(
    problems: list[ScenarioError], template: tuple[int, set[str]] | None
) -> list[ScenarioError]:
    """A mistake in a workload's `function` template shows in every function it generates:
    report it once, at the field the user wrote (workload.function.<key>)."""
    out, seen = [], set()
    for p in problems:
        m = re.fullmatch(r"functions\[(\d+)\]\.([A-Za-z0-9_]+)(.*)", p.field or "")
        if template and m and int(m.group(1)) >= template[0] and m.group(2) in template[1]:
            p = ScenarioError(
                p.message, file=p.file, field=f"workload.function.{m.group(2)}{m.group(3)}"
            )
        if (p.field, p.message) not in seen:
            seen.add((p.field, p.message))
            out.append(p)
    return out


def _expand_workload(
    data: dict[str, Any], context: dict[str, Any], file: str | None
) -> dict[str, Any]:
    """Replace `workload` by the functions it generates, appended to `functions`."""
    try:
        workload = Workload.model_validate(data["workload"], context=context)
        seed = data.get("seed", 0)
        generated = workload.expand(seed if isinstance(seed, int) else 0)
    except ValidationError as err:
        problems = [
            problem({**e, "loc": ("workload", *e["loc"])}, data, file) for e in err.errors()
        ]
        raise (problems[0] if len(problems) == 1 else ScenarioErrors(problems)) from None
    except ValueError as err:
        raise ScenarioError(str(err), file=file, field="workload") from None
    explicit = data.get("functions") or []
    if not isinstance(explicit, list):
        explicit = []
    return {
        **{k: v for k, v in data.items() if k != "workload"},
        "functions": [*explicit, *generated],
    }


#: Keys that name the kind of a mapping (a distribution, a policy, an arrival process).
KIND_KEYS = frozenset({"dist", "policy", "process"})


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set data[a][b][0][c] = value for "a.b.0.c". A missing mapping on the way is filled with
    the schema's default for it (so `platform.keep_alive.idle_s=600` changes the default
    policy's window), or an empty one where the schema has no default. Changing a mapping's
    kind (`dist`, `policy`, `process`) drops the old kind's parameters: set the kind first,
    then its parameters."""
    value = copy.deepcopy(value)  # later paths write into it: never into the caller's
    parts = dotted.split(".")
    node: Any = data
    model: Any = Scenario
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not re.fullmatch(r"\d+", part) or int(part) >= len(node):
                raise ScenarioError(f"{part!r} is not an index of a list of {len(node)} items")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
                model = concrete(item_type(model), node)
        elif isinstance(node, dict):
            if last:
                if part in KIND_KEYS and node.get(part) not in (None, value):
                    node.clear()  # another kind: the old kind's parameters do not apply
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = default_data(model, part)
                node = node[part]
                model = concrete(field_type(model, part), node)
        else:
            raise ScenarioError(f"cannot set {part!r} inside a {type(node).__name__} value")
    if not parts:
        raise ScenarioError("empty path")
