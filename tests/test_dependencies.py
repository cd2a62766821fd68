"""What each job depends on is declared once: a rule's code inputs are the modules its job runs
(`dependencies`, from the package's import graph), and every DVC stage lists exactly the code,
notebooks and captions of the jobs that write its outputs, as Snakemake's dry run plans them."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from essential_sparsity.config.dependencies import (
    PACKAGE,
    SHARED,
    imports,
    job_modules,
    module_file,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MODULES = sorted(".".join(p.relative_to(PACKAGE).with_suffix("").parts)
                 for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")
# what a DVC stage's deps may name besides its jobs' inputs: results it reads, its rule files
CODE = ["src", "workflow/notebooks", "workflow/report", "workflow/claims.yaml",
        "workflow/catalog.yaml"]


def python_imports(module: str) -> set[str]:
    """The package's modules `module` imports, as Python resolves its import statements."""
    tree = ast.parse((PACKAGE / module_file(module)).read_text())
    here = module.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("essential_sparsity") for a in node.names), module
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        target = here[:len(here) - node.level + 1] + (node.module.split(".") if node.module else [])
        for alias in node.names:
            as_module = ".".join([*target, alias.name])
            found.add(as_module if (PACKAGE / module_file(as_module)).is_file()
                      else ".".join(target))
    return {m for m in found if m and (PACKAGE / module_file(m)).is_file()}


@pytest.mark.parametrize("module", MODULES)
def test_the_import_graph_is_the_one_python_resolves(module):
    assert set(imports(module)) == python_imports(module)


def test_a_job_runs_its_stage_and_the_library_under_it_never_the_shared_modules():
    modules = job_modules("stages.finetune")
    assert {"stages.finetune", "training.finetune", "pruning.masks", "pruning.scope",
            "data.splitting", "catalog.sources"} <= set(modules)
    assert not set(modules) & {*SHARED, "evaluation.claims", "evaluation.tables", "stages.prune",
                               "cli.commands"}
    closed = {m for module in modules for m in imports(module)} - set(SHARED)
    assert closed <= set(modules)


def planned_jobs() -> list[dict]:
    """Every job of the default profile's full build: its rule, inputs and outputs."""
    run = subprocess.run([str(BIN / "snakemake"), "-n", "--forceall"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    out = run.stdout
    # a rule whose input function fails for a file it was only a candidate for is skipped with
    # a printed exception: the DAG is right, but every dry run shows hundreds of them
    assert "Exception" not in out + run.stderr
    jobs = []
    for block in re.split(r"\n(?=\[[^\]]+\]\n(?:local)?rule )", out):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if rule:
            files = {key: re.search(rf"^\s+{key}: (.*)$", block, re.M)
                     for key in ("input", "output")}
            jobs.append({"rule": rule.group(1),
                         **{k: m.group(1).split(", ") if m else [] for k, m in files.items()}})
    return jobs


def under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def test_every_dvc_stage_lists_the_code_its_jobs_run():
    jobs = planned_jobs()
    assert {"finetune_run", "draw_fig02", "report_page"} <= {job["rule"] for job in jobs}
    problems = []
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in stage["outs"]]
        outs += stage.get("metrics", [])
        ran = {path for job in jobs if any(under(o, outs) for o in job["output"])
               for path in job["input"] if under(path, CODE)}
        deps = [d for d in stage["deps"] if under(d, CODE)]
        missing = sorted(p for p in ran if not under(p, deps))
        extra = sorted(d for d in deps if not any(under(p, [d]) for p in ran))
        if missing or extra:
            problems.append(f"{name}: missing {missing}, not run {extra}")
    assert not problems, "\n".join(problems)

