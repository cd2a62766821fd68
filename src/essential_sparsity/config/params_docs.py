"""docs/params.md: every knob of params.yaml, one table per section, generated from the schema
(types, allowed values, descriptions) and params.yaml (defaults, each profile's overrides).

Generated rather than written so the page cannot drift from what validation accepts: after editing
either file, run `python -m essential_sparsity.config.params_docs`; a test fails while the page is
stale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .params import (
    PROFILES,
    PROJECT_ROOT,
    SCHEMA_PATH,
    apply_profile,
    read_yaml,
    with_builtin_names,
)

PARAMS_PATH = PROJECT_ROOT / "params.yaml"
DOC_PATH = PROJECT_ROOT / "docs" / "params.md"
COMMAND = "python -m essential_sparsity.config.params_docs"
_UNSET: Any = object()  # a key the default profile, or a profile's overrides, does not set
_COLUMNS = ("Key", "Type and allowed values", "Default", "Profile overrides", "Description")


@dataclass
class _Row:
    key: str
    kind: str
    default: Any
    overrides: dict[str, Any]
    description: str


def _pointer(root: dict, ref: str) -> dict:
    """The schema a local `$ref` (#/$defs/name) points to."""
    if not ref.startswith("#/"):
        raise ValueError(f"$ref {ref!r}: only references within the schema are supported")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _resolve(schema: dict, root: dict) -> dict:
    """`schema` with its `$ref` chain merged in; its own keys (a description) win."""
    if "$ref" not in schema:
        return schema
    own = {k: v for k, v in schema.items() if k != "$ref"}
    return {**_resolve(_pointer(root, schema["$ref"]), root), **own}


def _value(value: Any) -> str:
    """A value as compact text: null, true, 0.2, a bare string, JSON-like lists and mappings."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _bound(number: Any) -> str:
    """A bound, large integers grouped (1_000_000_000) so they read and never pass for a hash."""
    if isinstance(number, int) and not isinstance(number, bool) and abs(number) >= 10_000:
        return f"{number:_}"
    return _value(number)


def _bounds(schema: dict) -> str:
    """Numeric bounds as `1 to 1000`, `> 0 to < 1`, `>= 0`."""
    low = (_bound(schema["minimum"]) if "minimum" in schema else
           f"> {_bound(schema['exclusiveMinimum'])}" if "exclusiveMinimum" in schema else "")
    high = (_bound(schema["maximum"]) if "maximum" in schema else
            f"< {_bound(schema['exclusiveMaximum'])}" if "exclusiveMaximum" in schema else "")
    if low and high:
        return f"{low} to {high}"
    if low:
        return low if low.startswith(">") else f">= {low}"
    return high if high.startswith("<") else f"<= {high}" if high else ""


def _enum(schema: dict, root: dict) -> list | None:
    """The allowed values of an enum, or of alternatives that are all enums; else None."""
    if "enum" in schema:
        return list(schema["enum"])
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        resolved = [_resolve(a, root) for a in alternatives]
        if all("enum" in a for a in resolved):
            return [v for a in resolved for v in a["enum"]]
    return None


def _kind(schema: dict, root: dict) -> str:
    """The type and allowed values of a schema, as one line of text."""
    schema = _resolve(schema, root)
    values = _enum(schema, root)
    if values is not None:
        return "one of: " + ", ".join(map(_value, values))
    if "const" in schema:
        return f"exactly {_value(schema['const'])}"
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives:  # null last: `integer, 1 to 10, or null`
        texts = sorted((_kind(a, root) for a in alternatives), key=lambda t: t == "null")
        return (", or " if any("," in t for t in texts) else " or ").join(texts)
    kind = schema.get("type", "any value")
    if kind == "array":
        return _array(schema, root)
    if kind == "object":
        return _mapping(schema, root)
    if kind in ("integer", "number"):
        bounds = _bounds(schema)
        return f"{kind}, {bounds}" if bounds else kind
    if kind == "string" and "pattern" in schema:
        return f"string matching `{schema['pattern']}`"
    return kind


def _array(schema: dict, root: dict) -> str:
    items = _resolve(schema.get("items", {}), root)
    values = _enum(items, root)
    text = ("list drawn from: " + ", ".join(map(_value, values)) if values is not None
            else f"list of {_kind(items, root)}")
    least, most = schema.get("minItems"), schema.get("maxItems")
    rules = [f"exactly {least} items" if least is not None and least == most else
             "non-empty" if least == 1 else f"at least {least} items" if least else "",
             f"at most {most} items" if most is not None and most != least else "",
             "no repeats" if schema.get("uniqueItems") else "",
             f"must contain {_kind(schema['contains'], root).removeprefix('exactly ')}"
             if "contains" in schema else ""]
    rules = [r for r in rules if r]
    return f"{text}; {', '.join(rules)}" if rules else text


def _mapping(schema: dict, root: dict) -> str:
    if "properties" in schema:
        return "mapping with keys " + ", ".join(schema["properties"])
    keys = _kind(schema["propertyNames"], root) if "propertyNames" in schema else "any name"
    values = schema.get("additionalProperties", {})
    values = _resolve(values, root) if isinstance(values, dict) else {}
    value_text = ("a mapping with any of " + ", ".join(values["properties"])
                  if "properties" in values else _kind(values, root))
    return f"mapping; keys {keys}; values {value_text}"


def _description(schema: dict) -> str:
    return " ".join(str(schema.get("description", "")).split())


def _walk(key: str, schema: dict | None, default: Any, overrides: dict[str, Any], root: dict,
          rows: list[_Row], nested: list[tuple[str, str]]) -> None:
    """Rows for `key`: one per leaf, a mapping the schema gives fixed keys flattened to dotted
    keys (its keys in params.yaml's order, then those only the schema or a profile names)."""
    resolved = _resolve(schema, root) if schema is not None else {}
    values = [default, *overrides.values()]
    is_record = (("properties" in resolved or schema is None)
                 and any(isinstance(v, dict) for v in values)
                 and all(isinstance(v, dict) or v is _UNSET for v in values))
    if not is_record:
        rows.append(_Row(key, _kind(schema, root) if schema is not None else "not in the schema",
                         default, overrides, _description(resolved)))
        return
    if schema is not None and key.count(".") >= 1:
        nested.append((key, _description(resolved)))
    properties = resolved.get("properties", {})
    names = [*(default if isinstance(default, dict) else {}), *properties]
    names += [n for v in overrides.values() if isinstance(v, dict) for n in v]
    for name in dict.fromkeys(names):
        _walk(f"{key}.{name}", properties.get(name),
              default.get(name, _UNSET) if isinstance(default, dict) else _UNSET,
              {p: v.get(name, _UNSET) if isinstance(v, dict) else _UNSET
               for p, v in overrides.items()}, root, rows, nested)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(value: Any) -> str:
    return "*unset*" if value is _UNSET else f"`{_value(value)}`"


def _table(rows: list[_Row]) -> list[str]:
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for row in rows:
        overrides = "; ".join(f"{p}: {_code(v)}" for p, v in row.overrides.items()
                              if v is not _UNSET)
        cells = [f"`{row.key}`", row.kind, _code(row.default), overrides, row.description]
        lines.append("| " + " | ".join(map(_cell, cells)) + " |")
    return lines


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if not text or text.endswith(".") else text + "."


def params_markdown(schema_path: str | Path = SCHEMA_PATH,
                    params_path: str | Path = PARAMS_PATH) -> str:
    """The Markdown of docs/params.md, built from the files validation reads so the page says
    what they say: a section per top-level key of params.yaml, in its order, and a row per leaf
    key with its type and allowed values, default, each profile's override and what it does.
    The paths are parameters so a test can render a schema and params of its own."""
    schema = with_builtin_names(read_yaml(schema_path))
    raw = read_yaml(params_path)
    defaults = apply_profile(raw, "default", str(params_path))
    lines = [
        "# params.yaml",
        "",
        f"Generated by `{COMMAND}` from `workflow/schemas/params.schema.yaml` and `params.yaml`: "
        "do not edit this file by hand; edit those and run the command again.",
        "",
        "Each section's values are the `default` profile's; its `profiles.<name>` block "
        "overrides them key by key for that profile (nested mappings merge, lists and scalars "
        "replace). *Profile overrides* lists those values; *unset* marks an optional key that "
        "is not set.",
    ]
    for name, value in raw.items():
        overlays = (value.get("profiles") or {}) if isinstance(value, dict) else {}
        overrides = {p: overlays.get(p) or {} for p in PROFILES if p != "default" and p in overlays}
        section = schema.get("properties", {}).get(name)
        rows: list[_Row] = []
        nested: list[tuple[str, str]] = []
        _walk(name, section, defaults[name], overrides, schema, rows, nested)
        lines += ["", f"## `{name}`", ""]
        about = _description(_resolve(section, schema)) if section is not None else ""
        if about and [row.key for row in rows] != [name]:  # a lone key's row says it already
            lines += [_sentence(about), ""]
        if nested:
            lines += [f"- `{key}`: {about}" for key, about in nested] + [""]
        lines += _table(rows)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text(params_markdown())
    print(f"wrote {DOC_PATH.relative_to(PROJECT_ROOT)}")
