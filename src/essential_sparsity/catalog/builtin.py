"""The built-in models, tasks and corpora, read from the workflow's data file
(workflow/catalog.yaml) and checked against its schema: the one list of what each built-in name
stands for. The modules that read a source take their entries from here; a name params.yaml's
own catalog does not define is looked up here.

The Snakefile imports this module (through catalog.sources): it reads YAML only."""

from __future__ import annotations

import jsonschema

from ..config.params import PROJECT_ROOT, ParamsError, read_yaml

CATALOG_FILE = PROJECT_ROOT / "workflow" / "catalog.yaml"
CATALOG_SCHEMA = PROJECT_ROOT / "workflow" / "schemas" / "catalog.schema.yaml"


def load_builtin() -> dict:
    """The data file, checked: one ParamsError line naming the entry and what is wrong."""
    catalog = read_yaml(CATALOG_FILE)
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(read_yaml(CATALOG_SCHEMA)).iter_errors(catalog))
    if error is not None:
        where = ".".join(map(str, error.absolute_path)) or "the top level"
        raise ParamsError(f"{CATALOG_FILE}: {where}: {error.message}; fix it as "
                          f"{CATALOG_SCHEMA.name} says")
    return catalog


BUILTIN = load_builtin()
MODELS: dict[str, dict] = BUILTIN["models"]
VISION_MODELS: dict[str, dict] = BUILTIN["vision_models"]
CAUSAL_LMS: dict[str, dict] = BUILTIN["causal_lms"]
TASKS: dict[str, dict] = BUILTIN["tasks"]
CORPORA: dict[str, dict] = BUILTIN["corpora"]


def tasks_of(kind: str, *keys: str) -> dict[str, dict]:
    """The built-in tasks of one kind (text, qa, image, arithmetic), or only those whose entry
    has every one of `keys` (those a reader handles: `hub`, `folder`, ...)."""
    return {name: entry for name, entry in TASKS.items()
            if entry["kind"] == kind and all(key in entry for key in keys)}
