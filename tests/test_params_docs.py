"""docs/params.md is generated from the schema and params.yaml: it is current, it lists every key
once, every schema property says what it does, and the generator renders what it is given."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from essential_sparsity.config.params import SCHEMA_PATH
from essential_sparsity.config.params_docs import DOC_PATH, PARAMS_PATH, params_markdown

ROW = re.compile(r"^\| `([^`]+)` \|", re.M)


def leaf_keys(value: Any, key: str = "") -> set[str]:
    """Dotted keys of every leaf of nested mappings; an empty mapping is a leaf."""
    if not isinstance(value, dict) or not value:
        return {key}
    return {leaf for name, item in value.items()
            for leaf in leaf_keys(item, f"{key}.{name}" if key else name)}


def test_docs_params_md_is_current():
    assert DOC_PATH.read_text() == params_markdown(), (
        "docs/params.md is stale: run `python -m essential_sparsity.config.params_docs` and "
        "commit it")


def test_every_key_of_params_yaml_is_one_row():
    raw = yaml.safe_load(PARAMS_PATH.read_text())
    keys = set()
    for name, value in raw.items():
        overlays = (value.pop("profiles", None) or {}) if isinstance(value, dict) else {}
        keys |= leaf_keys(value, name)
        for overlay in overlays.values():
            keys |= leaf_keys(overlay or {}, name) - {name}
    rows = ROW.findall(params_markdown())
    assert len(rows) == len(set(rows)), [r for r in rows if rows.count(r) > 1]
    assert not [r for r in rows if "profiles" in r.split(".")]
    # a row covers its key and, for a free-form mapping such as finetune.per_task, the keys in it
    uncovered = [k for k in keys
                 if sum(k == r or k.startswith(r + ".") for r in rows) != 1]
    assert not uncovered
    assert {"finetune.epochs", "resources.train.mem_mb", "vision.pretrain.dino.out_dim",
            "vision.finetune.adam_epsilon", "finetune.per_task", "profile"} <= set(rows)


def schema_properties(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every property of the schema, at every level, $defs included."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                found += [(f"{path}.{name}", sub) for name, sub in value.items()]
            found += schema_properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for item in node:
            found += schema_properties(item, path)
    return found


def test_every_schema_property_has_a_description():
    properties = schema_properties(yaml.safe_load(SCHEMA_PATH.read_text()))
    assert len(properties) > 150
    undescribed = [path for path, sub in properties
                   if not (isinstance(sub, dict) and str(sub.get("description", "")).strip())]
    assert not undescribed


TINY_SCHEMA = """
$defs:
  size: {type: integer, minimum: 1, maximum: 10}
  colour: {enum: [red, blue]}
type: object
properties:
  profile: {enum: [smoke, default, paper], description: the profile}
  part:
    type: object
    description: the one section
    properties:
      size: {$ref: "#/$defs/size", description: how big}
      colour: {$ref: "#/$defs/colour", description: which colour}
      limit:
        oneOf: [{$ref: "#/$defs/size"}, {type: "null"}]
        description: "a cap | none"
      inner:
        type: object
        description: a nested mapping
        properties:
          ratio: {type: number, exclusiveMinimum: 0, maximum: 1, description: a share}
          names:
            type: array
            items: {type: string}
            minItems: 1
            uniqueItems: true
            description: some names
          extra: {type: boolean, description: optional}
"""

TINY_PARAMS = """
profile: default
part:
  size: 3
  colour: red
  limit: null
  inner: {ratio: 0.5, names: [a, b]}
  profiles:
    smoke: {size: 1, inner: {ratio: 0.25}}
    paper: {limit: 8, colour: blue}
"""


@pytest.fixture
def tiny(tmp_path) -> str:
    (tmp_path / "schema.yaml").write_text(TINY_SCHEMA)
    (tmp_path / "params.yaml").write_text(TINY_PARAMS)
    return params_markdown(tmp_path / "schema.yaml", tmp_path / "params.yaml")


def test_the_generator_renders_refs_enums_nullables_and_overrides(tiny):
    rows = [line for line in tiny.splitlines() if ROW.match(line)]
    assert rows == [
        "| `profile` | one of: smoke, default, paper | `default` |  | the profile |",
        "| `part.size` | integer, 1 to 10 | `3` | smoke: `1` | how big |",
        "| `part.colour` | one of: red, blue | `red` | paper: `blue` | which colour |",
        "| `part.limit` | integer, 1 to 10, or null | `null` | paper: `8` | a cap \\| none |",
        "| `part.inner.ratio` | number, > 0 to 1 | `0.5` | smoke: `0.25` | a share |",
        '| `part.inner.names` | list of string; non-empty, no repeats | `["a", "b"]` |  '
        "| some names |",
        "| `part.inner.extra` | boolean | *unset* |  | optional |",
    ]


def test_the_generator_has_its_header_and_a_section_per_top_level_key(tiny):
    assert "python -m essential_sparsity.config.params_docs" in tiny.splitlines()[2]
    assert "do not edit" in tiny.splitlines()[2]
    assert re.findall(r"^## `(\w+)`$", tiny, re.M) == ["profile", "part"]
    assert "The one section.\n" in tiny
    assert "- `part.inner`: a nested mapping\n" in tiny
