"""The package's layout by concept and the import rules that keep it readable: a stage reads its
inputs, calls the library and writes its outputs, so stages import library packages and never
each other; the library knows nothing of stages or the command line; no module reaches into
another's private names; and what the Snakefile imports stays free of torch, so planning a
build never pays for it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from essential_sparsity.config.dependencies import PACKAGE, imports, module_file

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(".".join(p.relative_to(PACKAGE).with_suffix("").parts)
                 for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")
LIBRARY = ("config", "catalog", "data", "pruning", "training", "evaluation", "records")
# the packages that may import stages: the command line that runs them
RUNNERS = ("cli",)


def package(module: str) -> str:
    return module.split(".")[0]


def test_every_module_lives_in_a_package_named_for_its_concept():
    assert {package(m) for m in MODULES} == {*LIBRARY, "stages", *RUNNERS}
    assert all("." in m for m in MODULES), [m for m in MODULES if "." not in m]
    for name in {package(m) for m in MODULES}:
        init = PACKAGE / name / "__init__.py"
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} says what it holds"


def test_stages_import_the_library_never_each_other():
    for module in MODULES:
        stages = [m for m in imports(module) if package(m) == "stages"]
        assert not stages or package(module) in RUNNERS, (module, stages)


def test_the_library_imports_neither_stages_nor_the_command_line():
    for module in (m for m in MODULES if package(m) in LIBRARY):
        outside = [m for m in imports(module) if package(m) not in LIBRARY]
        assert not outside, (module, outside)


def test_no_module_imports_another_modules_private_names():
    for module in MODULES:
        tree = ast.parse((PACKAGE / module_file(module)).read_text())
        private = [a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                   for a in node.names if a.name.startswith("_") and a.name != "__future__"]
        assert not private, (module, private)


def snakefile_imports() -> list[str]:
    """The package's modules the workflow's rule files import."""
    text = "\n".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    return sorted(set(re.findall(r"^from (essential_sparsity[\w.]*) import", text, re.M)))


def loaded_after(code: str, modules: tuple[str, ...]) -> list[str]:
    probe = f"import sys\n{code}\nprint(sorted(m for m in {modules!r} if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    return run.stdout.strip().splitlines()[-1]


def test_what_the_snakefile_and_the_light_commands_import_is_free_of_torch():
    """Every Snakemake call, a dry run too, pays for what the rule files import: not even numpy
    or pandas; `--help` and the table jobs start without torch."""
    modules = snakefile_imports()
    assert "essential_sparsity.config.params" in modules
    snakefile = "".join(f"import {m}\n" for m in modules)
    assert loaded_after(snakefile, ("torch", "transformers", "numpy", "pandas")) == "[]"
    help_text = ("from essential_sparsity.cli.commands import main\n"
                 "try:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    assert loaded_after(help_text, ("torch", "transformers")) == "[]"
