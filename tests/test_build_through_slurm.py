"""The smoke profile through the Slurm profile on a real scheduler, against the local build.

`make test` starts a one-node cluster on this machine (workflow/profiles/slurm/single-node.sh);
conftest's `smoke_builds` runs the whole DAG through it, every job an sbatch job. The tables it
ends with must be the local build's, and since that build was killed mid-job and resumed while this
one ran straight through, every checkpoint, mask, metrics file and provenance record must match
too (test_pipeline.py checks the resumed build itself). This module runs before test_pipeline.py
and removes the Slurm build when done: the two builds and a DVC round trip would not all fit.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from smoke import same_artefact, sh

pytestmark = pytest.mark.slow

ARTEFACTS = ("results/finetune", "results/lth", "results/masks", "results/llm")


@pytest.fixture(scope="module")
def through_slurm(smoke_builds):
    yield smoke_builds["slurm"]
    shutil.rmtree(smoke_builds["slurm"])


def records(repo: Path) -> list[dict]:
    return [json.loads(p.read_text()) for part in ("results", "reports")
            for p in (repo / part).rglob("*.prov.json")]


def test_every_job_ran_as_a_slurm_job(built, through_slurm):
    """Each job's provenance names the Slurm job it ran as, one per job of the DAG (the target
    rules, which run nothing, aside); the local build's name none."""
    plan = sh("snakemake", "-n", "--forceall", "--quiet", "rules", cwd=through_slurm).stdout
    planned = {m.group(1): int(m.group(2))
               for m in re.finditer(r"^(\w+)\s+(\d+)$", plan, flags=re.M)}
    summary = sh("snakemake", "--summary", "--cores", "1", cwd=through_slurm).stdout
    with_outputs = {line.split("\t")[2] for line in summary.splitlines()[1:] if line.strip()}
    jobs = {record["scheduler_job"] for record in records(through_slurm)}
    assert None not in jobs
    assert len(jobs) == sum(planned[rule] for rule in with_outputs)
    assert {record["scheduler_job"] for record in records(built)} == {None}


def timings_dropped(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    return frame.drop(columns=[c for c in frame.columns if c.endswith("_time_s")])


def test_the_tables_are_the_local_builds(built, through_slurm):
    tables = sorted(p.relative_to(built) for p in (built / "results/tables").glob("*.csv"))
    assert tables == sorted(p.relative_to(through_slurm)
                            for p in (through_slurm / "results/tables").glob("*.csv"))
    for table in tables:
        pd.testing.assert_frame_equal(timings_dropped(through_slurm / table),
                                      timings_dropped(built / table), obj=str(table))


def test_a_killed_and_resumed_build_has_the_artefacts_of_an_uninterrupted_one(built,
                                                                              through_slurm):
    """Checkpoints and masks: the same tensors and metadata; metrics: equal but for wall times."""
    for part in ARTEFACTS:
        ours = sorted(p.relative_to(built) for p in (built / part).rglob("*") if p.is_file())
        theirs = sorted(p.relative_to(through_slurm) for p in (through_slurm / part).rglob("*")
                        if p.is_file())
        assert ours == theirs, part
        for name in ours:
            assert same_artefact(built / name, through_slurm / name), name
