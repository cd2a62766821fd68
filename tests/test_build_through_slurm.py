"""The smoke profile through the Slurm profile on a real scheduler, against the local build.

`make test` starts a one-node cluster on this machine (workflow/profiles/slurm/single-node.sh);
conftest's `smoke_builds` runs the whole DAG through it, every job an sbatch job. Though the local
build was killed mid-job and resumed while this one ran straight through, in other processes under
another scheduler, both must write the same bytes for every artefact DVC hashes: the same
dvc.lock (test_pipeline.py checks the resumed build itself). This module runs before
test_pipeline.py and removes the Slurm build when done: the two builds and a DVC round trip would
not all fit.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from smoke import sh

from essential_sparsity.cli.commands import TENSOR_COMMANDS
from essential_sparsity.records.provenance import record_path

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def through_slurm(smoke_builds):
    yield smoke_builds["slurm"]
    shutil.rmtree(smoke_builds["slurm"])


def run_records(repo: Path) -> list[dict]:
    """When and where each job ran (beside the provenance records, outside DVC's hashes)."""
    return [json.loads(p.read_text()) for part in ("results", "reports")
            for p in (repo / part).rglob("*.run.json")]


def test_every_job_ran_as_a_slurm_job(built, through_slurm):
    """Each job's provenance names the Slurm job it ran as, one per job of the DAG (the target
    rules, which run nothing, aside); the local build's name none."""
    plan = sh("snakemake", "-n", "--forceall", "--quiet", "rules", cwd=through_slurm).stdout
    planned = {m.group(1): int(m.group(2))
               for m in re.finditer(r"^(\w+)\s+(\d+)$", plan, flags=re.M)}
    summary = sh("snakemake", "--summary", "--cores", "1", cwd=through_slurm).stdout
    with_outputs = {line.split("\t")[2] for line in summary.splitlines()[1:] if line.strip()}
    jobs = {record["scheduler_job"] for record in run_records(through_slurm)}
    assert None not in jobs
    assert len(jobs) == sum(planned[rule] for rule in with_outputs)
    assert {record["scheduler_job"] for record in run_records(built)} == {None}


def test_the_local_builds_tensor_jobs_ran_in_the_warm_worker(built, through_slurm):
    """`make figures` forks its tensor jobs from one warm worker (none pays torch's imports); a
    Slurm job computes in its own allocation, so it runs in its own process."""
    def warm(repo: Path) -> set[bool]:
        return {record["warm_worker"] for record in run_records(repo)
                if json.loads(record_path(repo / record["artefact"]).read_text())["command"]
                in TENSOR_COMMANDS}

    assert warm(built) == {True}
    assert warm(through_slurm) == {False}


def test_the_tables_are_the_local_builds(built, through_slurm):
    tables = sorted(p.relative_to(built) for p in (built / "results/tables").glob("*.csv"))
    assert tables == sorted(p.relative_to(through_slurm)
                            for p in (through_slurm / "results/tables").glob("*.csv"))
    for table in tables:
        pd.testing.assert_frame_equal(pd.read_csv(through_slurm / table),
                                      pd.read_csv(built / table), obj=str(table))


def hashed_files(repo: Path) -> dict[str, bytes]:
    """Every file DVC hashes: dvc.lock's outputs, directories walked without the files
    .dvcignore leaves out (the run records)."""
    outs = [out["path"] for stage in yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
            .values() for out in stage.get("outs", [])]
    files = {}
    for out in map(repo.joinpath, outs):
        found = sorted(out.rglob("*")) if out.is_dir() else [out]
        files.update({str(p.relative_to(repo)): p.read_bytes() for p in found
                      if p.is_file() and not p.name.endswith(".run.json")})
    return files


def test_a_killed_and_resumed_build_writes_the_bytes_of_an_uninterrupted_one(built,
                                                                             through_slurm):
    """The same dvc.lock, and so the same bytes in every checkpoint, mask, metrics file, table,
    figure and provenance record: nothing a build hashes depends on when, where or in how many
    attempts its jobs ran. Compared file by file first, so a failure names the file."""
    ours, theirs = hashed_files(built), hashed_files(through_slurm)
    assert sorted(ours) == sorted(theirs)
    assert [name for name in ours if ours[name] != theirs[name]] == []
    assert (built / "dvc.lock").read_text() == (through_slurm / "dvc.lock").read_text()
