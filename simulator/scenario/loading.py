"""The validating front door: `load_scenario(path)` reads YAML safely, applies `--set`
overrides, expands a trace `workload:` into functions and validates against the schema;
`parse_scenario(data)` does the same for plain data.
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ScenarioError, ScenarioErrors, ScenarioWarning
from ..policies.base import concrete
from ..workload.expansion import Workload
from . import presets
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
    # (path, value, how the user named it, what a bad value blames instead of the file)
    given: list[tuple[str, Any, str, str | None]] = []
    if isinstance(overrides, Mapping):
        given += [(str(k), v, str(k), f"override {k}") for k, v in overrides.items()]
    else:
        for item in overrides:
            key, sep, raw = str(item).partition("=")
            if not sep or not key.strip():
                raise ScenarioError(f"override {item!r}: expected dotted.path=value", file=file)
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError:
                value = raw
            given.append((key.strip(), value, f"--set {key.strip()}", f"--set {item}"))
    given += [(k, v, k, f"override {k}") for k, v in fields.items()]
    given += [(k, v, k, None) for k, v in (("seed", seed), ("duration_s", duration_s))
              if v is not None]  # fmt: skip
    given.sort(key=lambda g: g[0] not in ("platform.preset", "platform"))  # the preset first
    for key, value, named, _ in given:
        try:
            set_path(data, key, value)
        except ScenarioError as err:
            raise ScenarioError(err.message, file=file, field=named) from None
    try:
        return parse_scenario(data, base_dir=path.parent, file=file, allow_import=allow_import)
    except ScenarioError as err:
        blamed = [(key, who) for key, _, _, who in given if who is not None]
        raise _blame_overrides(err, blamed) from None


def _blame_overrides(err: ScenarioError, blamed: list[tuple[str, str]]) -> ScenarioError:
    """A problem with a value given by --set (or a Python override) names that --set, not
    the file. blamed: (dotted path, what to name instead of the file)."""
    given = {re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", key): who for key, who in blamed}
    if not given:
        return err

    def relabel(p: ScenarioError) -> ScenarioError:
        for path, who in given.items():
            if p.field == path or (p.field or "").startswith((f"{path}.", f"{path}[")):
                return ScenarioError(p.message, file=who, field=p.field)
        return p

    if isinstance(err, ScenarioErrors):
        return ScenarioErrors([relabel(e) for e in err.errors])
    return relabel(err)


def parse_scenario(
    data: Mapping[str, Any],
    *,
    base_dir: str | Path | None = None,
    file: str | None = None,
    allow_import: bool = False,
    warn_unused: bool = True,
    keep_source: bool = True,
) -> Scenario:
    """Validate plain data. Relative trace paths are resolved against base_dir; plug-in
    modules not imported yet are imported only with `allow_import`. Settings of a scenario
    file (`file` given) that change nothing are named in a ScenarioWarning each
    (`warn_unused`). `keep_source` keeps a copy of `data` as given, from which a variant
    under another platform.preset starts again."""
    preset = presets.preset_of(data)
    context = {"base_dir": base_dir, "allow_import": allow_import, "preset": preset.name}
    source = copy.deepcopy(dict(data)) if keep_source else None
    data = dict(data)
    template: tuple[int, set[str]] | None = None  # (first generated function, its keys)
    if data.get("workload") is not None:
        explicit = data.get("functions")
        first = len(explicit) if isinstance(explicit, list) else 0
        workload = data["workload"] if isinstance(data["workload"], dict) else {}
        keys = workload.get("function")
        template = (first, set(keys) if isinstance(keys, dict) else set())
        data = _expand_workload(data, context, file, preset)
    data, filled = presets.apply(data)
    try:
        scenario = Scenario.model_validate(data, context=context)
    except ValidationError as err:
        problems = [_said_by_preset(problem(e, data, file), filled, preset) for e in err.errors()]
        problems = _once_per_field(problems, template)
        raise (problems[0] if len(problems) == 1 else ScenarioErrors(problems)) from None
    scenario._origin = {"base_dir": base_dir, "file": file, "allow_import": allow_import}
    scenario._preset_filled = filled
    scenario._source = source
    if warn_unused and file is not None:  # a scenario file's own settings (not a variant's)
        for note in scenario.unused_settings():
            warnings.warn(f"{file}: {note}", ScenarioWarning, stacklevel=2)
    scenario._front_door = updated
    return scenario


def updated(scenario: Scenario, overrides: Mapping[str, Any]) -> Scenario:
    """Scenario.updated: the scenario's data with dotted paths set, validated again with the
    keywords that validated it (its file aside). Another platform.preset starts again from
    the data as the scenario was given (its workload expanded anew, the new preset's
    defaults filled in where it sets nothing): the old preset's and the schema's give way."""
    switch = overrides.get("platform.preset", scenario.platform.preset) != scenario.platform.preset
    source = None
    if scenario._source is not None:  # the overrides on the data as given, kept for later
        source = copy.deepcopy(scenario._source)
        try:
            for path in preset_first(overrides):
                set_path(source, path, overrides[path])
        except ScenarioError:
            source = None  # a path into what the workload generates: not in the source
    if switch and source is not None:
        data = copy.deepcopy(source)
    else:
        if switch:  # what the scenario set itself, less what its preset filled in
            data = scenario.model_dump(mode="json", by_alias=True, exclude_unset=True)
            for path in scenario._preset_filled:
                _drop(data, path)
        else:
            data = scenario.to_dict()
        for path in preset_first(overrides):
            set_path(data, path, overrides[path])
    out = parse_scenario(
        data, **{**scenario.origin(), "file": None}, warn_unused=False, keep_source=False
    )
    out._source = source
    return out


def preset_first(paths: Iterable[str]) -> list[str]:
    """Dotted paths with platform.preset first: the others fill missing mappings with the
    preset's defaults, so it must be known before them."""
    return sorted(paths, key=lambda p: p not in ("platform.preset", "platform"))


def _said_by_preset(
    p: ScenarioError, filled: list[str], preset: presets.Preset
) -> ScenarioError:
    """An error at a field the scenario left to its preset says so: the user did not write
    the value blamed."""
    for path in filled:
        if p.field == path or (p.field or "").startswith((f"{path}.", f"{path}[")):
            note = (
                f" ({path} comes from platform.preset {preset.name}; set it in the scenario "
                "to change it)"
            )
            return ScenarioError(p.message + note, file=p.file, field=p.field)
    return p


def _drop(data: dict[str, Any], path: str) -> None:
    """Remove data at a path of the form platform.key or functions[i].key."""
    m = re.fullmatch(r"functions\[(\d+)\]\.(\w+)", path)
    if m:
        functions = data.get("functions") or []
        if int(m.group(1)) < len(functions):
            functions[int(m.group(1))].pop(m.group(2), None)
    else:
        head, _, key = path.partition(".")
        node = data.get(head)
        if isinstance(node, dict):
            node.pop(key, None)


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
    data: dict[str, Any], context: dict[str, Any], file: str | None, preset: presets.Preset
) -> dict[str, Any]:
    """Replace `workload` by the functions it generates, appended to `functions` (memory by
    the preset's rule)."""
    try:
        workload = Workload.model_validate(data["workload"], context=context)
        seed = data.get("seed", 0)
        generated = workload.expand(seed if isinstance(seed, int) else 0, preset.memory_for)
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
                    from_preset = presets.preset_of(data).platform.get(part)
                    if node is data and part == "platform":
                        node[part] = {}  # the preset and the schema fill in the rest
                    elif node is data.get("platform") and isinstance(from_preset, dict):
                        node[part] = copy.deepcopy(from_preset)
                    else:
                        node[part] = default_data(model, part)
                node = node[part]
                model = concrete(field_type(model, part), node)
        else:
            raise ScenarioError(f"cannot set {part!r} inside a {type(node).__name__} value")
    if not parts:
        raise ScenarioError("empty path")
