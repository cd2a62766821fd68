"""Start-up of the jobs that do little work: what a table, claims, figure or report job pays
before its own work starts, and the CLI's `--help` and `check`. None of them imports torch or
transformers (`essential-sparsity --help` took 7.6 s on a CPU where importing torch is slow).

A figure job's start is the time from launching `essential-sparsity render` on a notebook to its
first cell running (the cell writes the clock): process start-up, params validation, papermill
and the kernel's start. Each a fresh process, median of several runs.

A tensor job pays torch's and transformers' imports unless the build's warm worker
(`essential_sparsity.cli.worker`, which `make figures` starts) runs it: a whole prune job (load the
packaged MiniLM, one OMP mask) is timed both ways.

    python -m benchmarks.startup
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from essential_sparsity.cli.worker import WORKER

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET_S = 2.0
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1",
       "TRANSFORMERS_OFFLINE": "1"}
CLI = ["essential-sparsity", "--params", str(ROOT / "params.yaml")]


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - start


def first_cell(work: Path) -> float:
    """Seconds from launching a figure job to its notebook's first cell."""
    clock = work / "clock.txt"
    notebook = work / "clock.ipynb"
    cell = f"import time\nopen({str(clock)!r}, 'w').write(repr(time.time()))"
    notebook.write_text(json.dumps({
        "cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "outputs": [],
                   "execution_count": None, "source": cell}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}))
    start = time.time()
    subprocess.run([*CLI, "render", "--notebook", str(notebook), "--html",
                    str(work / "clock.html")], cwd=ROOT, env=ENV, check=True,
                   capture_output=True)
    return float(clock.read_text()) - start


def prune_job(work: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([*CLI, "prune", "--model", "minilm-l6", "--method", "omp-global",
                    "--sparsity", "0.5", "--out", str(work / "mask.safetensors")], cwd=ROOT,
                   env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def warm_worker(work: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    """A worker server, ready (its imports done), and the environment that sends jobs to it."""
    path = work / "worker.sock"
    server = subprocess.Popen([sys.executable, "-m", "essential_sparsity.cli.worker", "--serve",
                               str(path)], env=ENV)
    env = {**ENV, WORKER: str(path)}
    prune_job(work, env)  # waits for the imports
    return server, env


def torch_free(command: str) -> bool:
    """Whether a subcommand's process finishes without importing torch or transformers."""
    probe = ("import sys, runpy; sys.argv = ['essential-sparsity', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('essential_sparsity.cli.commands', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print(any(m in sys.modules for m in ('torch', 'transformers')))")
    out = subprocess.run([sys.executable, "-c", probe, *CLI[1:], command], cwd=ROOT, env=ENV,
                         capture_output=True, text=True).stdout.strip().splitlines()
    return out[-1] == "False"


def report(repeats: int) -> str:
    cases = {"essential-sparsity --help": lambda: timed([*CLI, "--help"]),
             "essential-sparsity check": lambda: timed([*CLI, "check"]),
             "snakemake -n (this checkout, complete or not)": lambda: timed(
                 ["snakemake", "-n", "--quiet"])}
    with tempfile.TemporaryDirectory() as work:
        server, warm = warm_worker(Path(work))
        cases["figure job to its notebook's first cell"] = lambda: first_cell(Path(work))
        cases["prune job, in its own process"] = lambda: prune_job(Path(work), ENV)
        cases["prune job, through the warm worker"] = lambda: prune_job(Path(work), warm)
        lines = ["## Start-up of light jobs", "",
                 f"Each a fresh process, median of {repeats} runs. Target: under {TARGET_S:g} s "
                 f"each for the light jobs (a complete build's `snakemake -n` is in the no-op "
                 f"section); the prune job has none.", "",
                 "| what | median s | min s | max s | within target |", "|---|---|---|---|---|"]
        for name, case in cases.items():
            times = [case() for _ in range(repeats)]
            median = statistics.median(times)
            target = "-" if name.startswith("prune") else "yes" if median < TARGET_S else "no"
            lines.append(f"| {name} | {median:.2f} | {min(times):.2f} | {max(times):.2f} | "
                         f"{target} |")
        server.terminate()
        server.wait()
    free = {c: torch_free(c) for c in ("--help", "check")}
    lines += ["", "Imports torch or transformers: " + ", ".join(
        f"`{c}` {'no' if ok else 'YES'}" for c, ok in free.items())]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    print(report(parser.parse_args().repeats))


if __name__ == "__main__":
    main()
