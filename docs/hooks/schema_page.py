"""MkDocs hook: the scenario reference page, generated at build time from the schema.

The pydantic models in coldsim.scenario.schema are the one source of truth for fields,
defaults, bounds and their sources; this renders `coldsim schema`'s JSON Schema as tables,
so the page cannot drift from what `coldsim validate` accepts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mkdocs.structure.files import File

PAGE = "reference/scenario.md"

INTRO = """\
# Scenario reference

Every field a scenario file may hold, with its type, bounds, default and meaning, generated
when this site is built from the models `coldsim validate` checks against (`coldsim schema`
prints the same as JSON Schema, for editors' YAML completion). Defaults that model a real
platform cite their sources as `[sources: key]`: the keys are listed in
[Sources](../sources.md). Times carry their unit in the field's name (`_s`, `_ms`), memory
too (`_mb`). A field marked *required* has no default.

Where a field takes one of several kinds of block, the key that picks the kind is named
(for example `dist:` for a distribution, `policy:` for a keep-alive policy) and each kind has
its own table below. Types link to those tables.
"""

# Bounds and formats shown after a field's type, in reading order.
BOUNDS = (
    ("minimum", "≥ {}"), ("exclusiveMinimum", "> {}"), ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"), ("minLength", "at least {} characters"),
    ("maxLength", "at most {} characters"), ("minItems", "at least {} item(s)"),
    ("maxItems", "at most {} item(s)"), ("pattern", "matching `{}`"),
)  # fmt: skip


def anchor(name: str) -> str:
    return "def-" + name.lower().replace("__", "-").replace("_", "-")


def display_name(name: str) -> str:
    # Pydantic qualifies models whose names clash (two LeastRecentlyUsed): keep the family.
    parts = name.split("__")
    return f"{parts[-1]} ({parts[-2]})" if len(parts) > 1 else name


def ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def escape(text: str) -> str:
    """Text for a table cell: HTML-like `<name>` kept literal outside code spans, pipes
    escaped, one line; `[sources: …]` links to the sources page."""
    parts = text.replace("\n", " ").split("`")
    for i in range(0, len(parts), 2):  # even parts are outside code spans: literal text
        for char, escaped in (("<", "&lt;"), (">", "&gt;"), ("[", "\\["), ("]", "\\]")):
            parts[i] = parts[i].replace(char, escaped)
    out = "`".join(parts).replace("|", "\\|")
    return re.sub(r"\\\[sources: (.+?)\\\]", r"[sources: \1](../sources.md)", out)


def literal(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return f"`{text}`".replace("|", "\\|")


def type_of(prop: dict[str, Any]) -> str:
    """A field's type, in words, with links to the tables of the blocks it takes."""
    if "$ref" in prop:
        name = ref_name(prop["$ref"])
        return f"[{display_name(name)}](#{anchor(name)})"
    if "allOf" in prop and len(prop["allOf"]) == 1:
        return type_of(prop["allOf"][0])
    if "const" in prop:
        return literal(prop["const"])
    if "enum" in prop:
        return " \\| ".join(literal(v) for v in prop["enum"])
    for key in ("oneOf", "anyOf"):
        if key in prop:
            kinds = [type_of(p) for p in prop[key]]
            text = " or ".join(dict.fromkeys(kinds))
            if "discriminator" in prop:
                text = f"by `{prop['discriminator']['propertyName']}:`, one of {text}"
            return text
    kind = prop.get("type")
    if kind == "array":
        if "prefixItems" in prop:
            return "[" + ", ".join(type_of(p) for p in prop["prefixItems"]) + "]"
        return f"list of {type_of(prop.get('items', {}))}"
    if kind == "object":
        values = prop.get("additionalProperties")
        if isinstance(values, dict) and values:
            return f"mapping of {type_of(prop.get('propertyNames', {'type': 'string'}))} to " \
                   f"{type_of(values)}"
        return "mapping"
    if isinstance(kind, list):
        return " or ".join(kind)
    return kind or "any value"


def bounds(prop: dict[str, Any]) -> str:
    found = [fmt.format(prop[key]) for key, fmt in BOUNDS if key in prop]
    for key in ("anyOf", "oneOf"):  # bounds of `x or null` live on the non-null branch
        for branch in prop.get(key, []):
            if "$ref" not in branch:
                found += [fmt.format(branch[k]) for k, fmt in BOUNDS if k in branch]
    items = prop.get("items")
    if isinstance(items, dict) and "$ref" not in items:
        found += [f"each {fmt.format(items[k])}" for k, fmt in BOUNDS if k in items]
    return ", ".join(dict.fromkeys(found))


def table(model: dict[str, Any]) -> list[str]:
    props = model.get("properties", {})
    if not props:
        return ["No fields."]
    required = set(model.get("required", []))
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for name, prop in props.items():
        kind = type_of(prop)
        if extra := bounds(prop):
            kind += f"; {extra}"
        if name in required:
            default = "*required*"
        elif "default" in prop:
            default = literal(prop["default"])
        elif "$ref" in prop:  # a block made by default: its own fields' defaults apply
            default = "its fields' defaults"
        else:  # made by a function the schema does not spell out; the meaning says what
            default = "see meaning"
        rows.append(f"| `{name}` | {kind} | {default} | {escape(prop.get('description', ''))} |")
    return rows


def referenced(obj: Any) -> list[str]:
    """Names of the models obj refers to, in the order they first appear."""
    found: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "$ref":
                found.append(ref_name(value))
            elif key != "mapping":
                found += referenced(value)
    elif isinstance(obj, list):
        for value in obj:
            found += referenced(value)
    return found


def render(schema: dict[str, Any]) -> str:
    """The reference page for a scenario JSON Schema: the top level, then each model in
    the order a reader meets it (breadth first from the top)."""
    defs = schema.get("$defs", {})
    order: list[str] = []
    queue = referenced(schema.get("properties", {}))
    while queue:
        name = queue.pop(0)
        if name not in order:
            order.append(name)
            queue += referenced(defs[name].get("properties", {}))
    order += sorted(set(defs) - set(order))  # unreachable ones, if any, still documented
    lines = [INTRO, "## Scenario { #def-scenario }", "", escape(schema.get("description", "")),
             "", *table(schema)]  # fmt: skip
    for name in order:
        model = defs[name]
        lines += ["", f"## {display_name(name)} {{ #{anchor(name)} }}", ""]
        if "description" in model:
            lines += [escape(model["description"]), ""]
        if "properties" in model:
            lines += table(model)
        else:  # an alias for a plain type (a union, a list)
            lines.append(f"Type: {type_of(model)}.")
    return "\n".join(lines) + "\n"


def on_files(files, config):
    from coldsim.scenario.schema import Scenario

    files.append(File.generated(config, PAGE, content=render(Scenario.model_json_schema())))
    return files
