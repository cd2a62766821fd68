"""Run every benchmark, each in its own process, and write their reports to reports/benchmarks.md.

    python -m benchmarks.run                     # or: make benchmarks
    python -m benchmarks.run --build-root DIR    # time the no-op check and the rules of the
                                                 # complete build in another checkout (a fresh
                                                 # clone after `make figures`)
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from essential_sparsity.records.io import atomic_path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "reports" / "benchmarks.md"
BENCHMARKS = ("omp_global", "sparse_step", "checkpoint_size", "startup", "noop", "rule_times")
ON_A_BUILD = ("noop", "rule_times")  # these read a built checkout: --root

HEADER = """\
# Benchmarks

{date}; {cpu}, {cores} cores; torch {torch}.

Written by `make benchmarks` (`python -m benchmarks.run`): each section is one script,
`python -m benchmarks.NAME`, run in its own process. Times are medians of several runs on this
machine; each section says what it measured and its target. Benchmarks print numbers and are never
timed tests. The 2:4 semi-structured sparse-kernel benchmark (`to_sparse_semi_structured` matrix
products against dense ones) needs an NVIDIA GPU and was not run: this machine has none.
"""


def cpu_model() -> str:
    """The CPU as `lscpu` names it, with its family and model (one name covers CPUs whose speed
    differs by almost 2x here) and whether it has native bf16."""
    try:
        fields = dict(line.split(":", 1) for line in
                      Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines()
                      if ":" in line)
    except OSError:
        return platform.processor() or platform.machine()
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    bf16 = "with" if "avx512_bf16" in fields.get("flags", "").split() else "without"
    return (f"{fields.get('model name', platform.machine())} (family {fields.get('cpu family')}, "
            f"model {fields.get('model')}; {bf16} AVX512-BF16)")


def run_one(name: str, args: list[str]) -> tuple[str, bool]:
    """The script's markdown, or a section saying how it failed."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    start = time.perf_counter()
    print(f"benchmarks.{name} ...", file=sys.stderr, flush=True)
    result = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)
    print(f"benchmarks.{name}: exit {result.returncode} after {time.perf_counter() - start:.0f} s",
          file=sys.stderr, flush=True)
    if result.returncode != 0:
        return (f"## benchmarks.{name} failed\n\n`python -m benchmarks.{name}` exited "
                f"{result.returncode}; its error is on the terminal that ran it.\n"), False
    return result.stdout.strip() + "\n", True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-root", type=Path, default=ROOT,
                        help="checkout with a complete build (default: this one)")
    build_root = ["--root", str(parser.parse_args().build_root.resolve())]
    header = HEADER.format(date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                           cpu=cpu_model(), cores=os.cpu_count(), torch=torch.__version__)
    sections, failed = [header], []
    for name in BENCHMARKS:
        text, ok = run_one(name, build_root if name in ON_A_BUILD else [])
        sections.append(text)
        if not ok:
            failed.append(name)
    with atomic_path(REPORT) as tmp:
        tmp.write_text("\n".join(sections))
    print(f"wrote {REPORT.relative_to(ROOT)}", file=sys.stderr)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
