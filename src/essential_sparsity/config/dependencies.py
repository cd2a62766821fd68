"""The library code a job runs: the module its work is in and every module that one imports, read
from the package's own import statements. Snakemake's rules take their code inputs from here, and
a test holds dvc.yaml's stage deps to the same files, so editing a module reruns the jobs that run
it, under either tool, and no others.

Three modules every job runs are left out: `records.io` (how artefacts are read and written),
`config.params` (reading and validating params.yaml) and `records.provenance` (the record beside
each artefact). Listing them would rerun the whole build for a new check or message; what a job
computes from params.yaml is tracked by its rule's params instead. The Snakefile imports this
module: it reads text only."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).parents[1]
SHARED = ("records.io", "config.params", "records.provenance")
# The data a module reads as its own code, relative to the project: a job that runs the module
# depends on them as on its source (the built-in catalog says where each model and task is).
DATA_FILES = {"catalog.builtin": ("workflow/catalog.yaml",)}
# `from .x import ...`, `from ..x.y import ...` and `from . import x, y as z`, at module level or
# inside a function
_IMPORT = re.compile(r"^[ \t]*from (\.+)([\w.]*) import (?:\(([^)]*)\)|([\w, ]+))", re.M)


def module_file(module: str) -> Path:
    """The file of a module named as from the package root (`stages.finetune`), relative to it."""
    return Path(*module.split(".")).with_suffix(".py")


def _is_module(parts: list[str]) -> bool:
    return bool(parts) and (PACKAGE / module_file(".".join(parts))).is_file()


@cache
def imports(module: str) -> tuple[str, ...]:
    """The package's modules that `module` imports, sorted."""
    here = module.split(".")[:-1]
    found = set()
    text = (PACKAGE / module_file(module)).read_text()
    for dots, source, wrapped, names in _IMPORT.findall(text):
        base = here[:len(here) - len(dots) + 1]
        target = base + source.split(".") if source else base
        for entry in filter(None, (n.strip() for n in (wrapped or names).split(","))):
            name = entry.split(" as ")[0].strip()
            found.add(".".join([*target, name]) if _is_module([*target, name])
                      else ".".join(target))
    return tuple(sorted(m for m in found if _is_module(m.split("."))))


def job_modules(*entries: str) -> list[str]:
    """The modules a job whose work is in `entries` runs: them and what they import, transitively,
    less the shared ones; sorted."""
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        module = todo.pop()
        if module not in seen and module not in SHARED:
            seen.add(module)
            todo += imports(module)
    return sorted(seen)


def job_files(*entries: str) -> list[str]:
    """The files, relative to the project, of what a job whose work is in `entries` runs: its
    modules' sources and the data they read as code."""
    modules = job_modules(*entries)
    return ([str(Path("src", PACKAGE.name, module_file(m))) for m in modules]
            + [data for m in modules for data in DATA_FILES.get(m, ())])
