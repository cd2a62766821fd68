"""An overall progress line for a whole build: `python -m essential_sparsity.cli.progress CMD...`
runs CMD (the Makefile's `snakemake --cores all`) and, while it runs, prints to stderr how many of
the build's jobs are done, of how many, and about how long the rest will take.

Snakemake counts its steps but does not say how long the rest will take (and under `dvc repro`,
which runs one Snakemake per stage, it counts only that stage's). The plan comes from one Snakemake
dry run of every target before CMD starts; a job counts as done once the run record
(provenance.RUN_SUFFIX) of its first output is newer than the plan. The time left is each
remaining job's rule's mean time so far (the mean of all finished jobs for a rule not seen yet),
divided by how many jobs ran at once so far."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from ..records.provenance import RUN_SUFFIX, record_path

JOB = re.compile(r"^(?:local)?rule (\w+):$", re.M)
OUTPUT = re.compile(r"^Shell command: .*?--record-output (\S+)", re.M)


def plan(root: Path = Path(".")) -> list[tuple[str, Path]]:
    """(rule, first output) of every job a build would run now (target rules run nothing)."""
    dry = subprocess.run(["snakemake", "-n", "-p"], cwd=root, capture_output=True, text=True)
    if dry.returncode != 0:
        return []
    blocks = JOB.split(dry.stdout)[1:]
    jobs = []
    for rule, block in zip(blocks[::2], blocks[1::2], strict=True):
        output = OUTPUT.search(block)
        if output:
            jobs.append((rule, root / output.group(1)))
    return jobs


def finished(jobs: list[tuple[str, Path]], since: float) -> dict[int, tuple[str, float]]:
    """The jobs done since `since`: index -> (rule, wall seconds)."""
    done = {}
    for index, (rule, output) in enumerate(jobs):
        run = record_path(output, RUN_SUFFIX)
        try:
            if run.stat().st_mtime >= since:
                done[index] = (rule, json.loads(run.read_text())["wall_time_s"])
        except (OSError, ValueError, KeyError):
            continue
    return done


def seconds_left(jobs: list[tuple[str, Path]], done: dict[int, tuple[str, float]],
                 elapsed: float) -> float | None:
    """The remaining jobs' expected time (per-rule means of the finished ones), at the
    parallelism seen so far; None before any job finished."""
    if not done:
        return None
    by_rule: dict[str, list[float]] = {}
    for rule, seconds in done.values():
        by_rule.setdefault(rule, []).append(seconds)
    overall = sum(s for _, s in done.values()) / len(done)
    work = sum(sum(by_rule[rule]) / len(by_rule[rule]) if rule in by_rule else overall
               for index, (rule, _) in enumerate(jobs) if index not in done)
    parallel = max(1.0, sum(s for _, s in done.values()) / max(elapsed, 1.0))
    return work / parallel


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def line(jobs: list[tuple[str, Path]], done: dict, elapsed: float) -> str:
    left = seconds_left(jobs, done, elapsed)
    estimate = "" if left is None else f", about {_minutes(left)} left"
    return (f"progress: {len(done)} of {len(jobs)} jobs done "
            f"({100 * len(done) / len(jobs):.0f}%), {_minutes(elapsed)} elapsed{estimate}")


def main(argv: list[str]) -> int:
    """Run the command, reporting every 30 s while the count changes; its exit status."""
    start = time.time()
    jobs = plan()
    command = subprocess.Popen(argv)
    shown = -1
    while command.poll() is None:
        try:
            command.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        except KeyboardInterrupt:
            command.wait()
            break
        done = finished(jobs, start)
        if jobs and len(done) != shown:
            print(line(jobs, done, time.time() - start), file=sys.stderr, flush=True)
            shown = len(done)
    return command.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
