"""The conventions CI holds the project to: ruff clean, snakemake --lint clean, notebooks stored
without outputs (the executed copies are build targets, never committed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True)


def test_ruff_clean():
    result = run(str(BIN / "ruff"), "check", "src", "tests", "benchmarks", "workflow")
    assert result.returncode == 0, result.stdout


def test_snakemake_lint_clean():
    result = run(str(BIN / "snakemake"), "--lint")
    assert "Congratulations" in result.stdout + result.stderr, result.stdout + result.stderr


def test_notebooks_have_no_outputs():
    notebooks = sorted((ROOT / "workflow" / "notebooks").glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        cells = json.loads(path.read_text())["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert any("parameters" in c["metadata"].get("tags", []) for c in code), path
        assert all(not c["outputs"] and c["execution_count"] is None for c in code), path
