"""The overall progress line of `make figures`: jobs of the whole plan, done when their run record
appears, and the time left from what the finished jobs took."""

from __future__ import annotations

import json
import os
import time

from essential_sparsity.cli import progress
from essential_sparsity.records.provenance import RUN_SUFFIX, record_path

DRY_RUN = """
rule prune:
    output: results/masks/m/omp-global/0.5.safetensors
Shell command: essential-sparsity --record-output results/masks/a.safetensors \
--record-output results/masks/a.json prune

localrule masks:
    input: results/masks/a.safetensors

rule finetune_run:
Shell command: essential-sparsity --record-output results/finetune/b/metrics.json finetune
"""


def test_the_plan_is_every_job_that_runs_a_command(monkeypatch, tmp_path):
    class Dry:
        returncode, stdout = 0, DRY_RUN

    monkeypatch.setattr(progress.subprocess, "run", lambda *a, **k: Dry)
    assert progress.plan(tmp_path) == [
        ("prune", tmp_path / "results/masks/a.safetensors"),
        ("finetune_run", tmp_path / "results/finetune/b/metrics.json")]


def write_run(output, seconds: float, when: float) -> None:
    run = record_path(output, RUN_SUFFIX)
    run.parent.mkdir(parents=True, exist_ok=True)
    run.write_text(json.dumps({"wall_time_s": seconds}))
    os.utime(run, (when, when))


def test_done_jobs_are_those_with_a_fresh_run_record_and_the_rest_is_estimated(tmp_path):
    start = time.time()
    jobs = [("finetune_run", tmp_path / f"run{i}/metrics.json") for i in range(4)]
    jobs += [("prune", tmp_path / "mask.safetensors")]
    write_run(jobs[0][1], 100.0, start + 1)
    write_run(jobs[1][1], 60.0, start + 2)
    write_run(jobs[4][1], 10.0, start - 3600)  # an earlier build's: not this one's work
    done = progress.finished(jobs, start)
    assert done == {0: ("finetune_run", 100.0), 1: ("finetune_run", 60.0)}
    # two jobs ran at once (160 s of work in 80 s): the three left take 3 x 80 / 2 s
    assert progress.seconds_left(jobs, done, elapsed=80.0) == 120.0
    assert progress.line(jobs, done, 80.0) == (
        "progress: 2 of 5 jobs done (40%), 1 min elapsed, about 2 min left")
    assert progress.seconds_left(jobs, {}, 10.0) is None
    assert progress.line(jobs, {}, 10.0) == "progress: 0 of 5 jobs done (0%), 10 s elapsed"


def test_the_command_runs_and_its_status_is_returned(monkeypatch):
    monkeypatch.setattr(progress, "plan", lambda: [])
    assert progress.main(["sh", "-c", "exit 3"]) == 3
    assert progress.main(["true"]) == 0
