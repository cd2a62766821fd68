"""The no-op check of a complete build: how long `snakemake -n` and `dvc status` take to say that
nothing needs to run. Both are what a user pays on every call once the build is done (a second
`make figures` runs Snakemake over the whole DAG, a reviewer's `dvc repro` checks every stage).

Each command runs once untimed to check that the build really is complete (Snakemake prints
"Nothing to be done", DVC "up to date"); if it is not, the report says so and times nothing.

    python -m benchmarks.noop                    # the build in this checkout
    python -m benchmarks.noop --root DIR         # another checkout's build
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET_S = 2.0
# command -> what its output holds when nothing needs to run
COMMANDS = {"snakemake -n": "Nothing to be done", "dvc status": "up to date"}


def run(command: str, root: Path) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    start = time.perf_counter()
    result = subprocess.run(command.split(), cwd=root, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, result


def incomplete(root: Path) -> list[str]:
    """Why the build in `root` is not a complete one (empty when it is)."""
    if not (root / "results").is_dir():
        return [f"`{root}/results/` does not exist: nothing has been built in this checkout"]
    problems = []
    for command, done in COMMANDS.items():
        _, result = run(command, root)
        out = result.stdout + result.stderr
        if result.returncode != 0 or done not in out:
            tail = [line for line in out.strip().splitlines() if line.strip()][-4:]
            problems.append(f"`{command}` exited {result.returncode} without \"{done}\": "
                            + " / ".join(line.strip() for line in tail))
    return problems


def report(root: Path, repeats: int) -> str:
    lines = ["## No-op check of a complete build", "",
             f"Wall time of `snakemake -n` and `dvc status` in `{root}` when the build is complete "
             f"(each a fresh process, median of {repeats} runs after one untimed check). Target: "
             f"under {TARGET_S:g} s each.", ""]
    problems = incomplete(root)
    if problems:
        lines += ["Not measured: the build here is not complete, so these would not be no-op "
                  "timings.", ""] + [f"- {p}" for p in problems]
        return "\n".join(lines)
    lines += ["| command | median s | min s | max s | within target |", "|---|---|---|---|---|"]
    for command in COMMANDS:
        times = []
        for _ in range(repeats):
            seconds, result = run(command, root)
            if result.returncode != 0 or COMMANDS[command] not in result.stdout + result.stderr:
                raise RuntimeError(f"{command} stopped reporting a complete build: "
                                   f"{result.stdout}{result.stderr}")
            times.append(seconds)
        median = statistics.median(times)
        lines.append(f"| `{command}` | {median:.2f} | {min(times):.2f} | {max(times):.2f} "
                     f"| {'yes' if median < TARGET_S else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout with a complete build")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(report(args.root.resolve(), args.repeats))


if __name__ == "__main__":
    main()
