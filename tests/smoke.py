"""The smoke profile built end to end in scratch git repositories, shared by the slow tests.

The local build is the README's first command, `make figures`, killed while a fine-tuning job runs
and started again: every test of the built pipeline therefore also checks that a resumed build is
a complete one. A second, uninterrupted build runs through the Slurm profile at the same time (its
jobs spend much of their life waiting on the scheduler, which the local build's fill) and is
compared with the first in test_build_through_slurm.py.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# One author and date for every scratch repository: two builds of the same sources are then
# builds of one commit, as two fresh clones of main would be.
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1",
       "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
       "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
       "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}


def sh(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


BUILT = ("results/", "reports/figures/", "reports/notebooks/", "logs/")


def tracked_files() -> list[str]:
    """The project's sources as a clean clone has them (a local build's artefacts left out)."""
    listing = sh("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    return [f for f in listing.stdout.splitlines()
            if (ROOT / f).is_file() and not f.startswith(BUILT)]


def set_profile(repo: Path, profile: str) -> None:
    params = repo / "params.yaml"
    text, n = re.subn(r"^profile: \w+", f"profile: {profile}", params.read_text(), flags=re.M)
    assert n == 1
    params.write_text(text)


def csv_dicts(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def csv_rows(path: Path, key: str, value: str) -> list[tuple[str, str]]:
    return [(row[key], row[value]) for row in csv_dicts(path)]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in root.rglob("*") if p.is_file()}


def smoke_repo(repo: Path) -> Path:
    """A git repository of the project's sources on the smoke profile, nothing built."""
    for name in tracked_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name)
    set_profile(repo, "smoke")
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-qm", "smoke", cwd=repo)
    return repo



def running_finetune_job(repo: Path, build: subprocess.Popen, timeout: float = 900) -> Path:
    """The run directory of a fine-tuning job that has been running for a second: its log
    exists (the shell opened it when the job started) and its metrics.json does not."""
    logs = repo / "logs" / "finetune"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if build.poll() is not None:
            raise AssertionError(f"the build ended ({build.returncode}) before a fine-tuning "
                                 f"job was seen running")
        for log in logs.rglob("*.log") if logs.is_dir() else []:
            run = repo / "results" / "finetune" / log.relative_to(logs).with_suffix("")
            if not (run / "metrics.json").exists() and time.time() - log.stat().st_mtime > 1:
                return run
        time.sleep(0.2)
    raise AssertionError(f"no fine-tuning job started within {timeout:.0f} s")


# Polling every 2 s suits a one-node test cluster; a real cluster keeps the plugin's default.
SLURM = (sys.executable, str(ROOT / "tests" / "snakemake_polling_often.py"),
         "--workflow-profile", "workflow/profiles/slurm",
         "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2")


def gone(group: int, timeout: float = 60) -> None:
    """Wait until every process of a killed group has exited (SIGKILL is not instant; a dying
    Snakemake still holds its directory). Zombies count as gone: nothing may reap them here."""
    def alive() -> bool:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group and fields[0] != "Z":
                return True
        return False

    deadline = time.monotonic() + timeout
    while alive():
        if time.monotonic() > deadline:
            raise AssertionError(f"processes of the killed build ({group}) still run")
        time.sleep(0.1)


def killed_and_resumed_build(repo: Path) -> Path:
    """`make figures` killed with every process it started while a fine-tuning job runs, then
    run again to the end; returns the killed job's run directory, checked to hold no metrics
    right after the kill."""
    make = ("make", "figures", f"VENV={BIN.parent}")  # the set-up environment, not a new one
    build = subprocess.Popen(make, cwd=repo, env=ENV, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        killed = running_finetune_job(repo, build)
    finally:
        os.killpg(build.pid, signal.SIGKILL)
        build.wait()
        gone(build.pid)
    assert not (killed / "metrics.json").exists(), "the killed job left metrics behind"
    sh(*make, cwd=repo)
    return killed


def start_slurm_build(repo: Path) -> subprocess.Popen:
    """The whole DAG submitted through the Slurm profile, in the background; its output goes to
    slurm-build.log beside the repository."""
    ping = sh("scontrol", "ping", cwd=repo, check=False)
    assert "UP" in ping.stdout, f"no Slurm controller answers (`make slurm` starts one): {ping}"
    log = (repo.parent / "slurm-build.log").open("w")
    return subprocess.Popen(SLURM, cwd=repo, env=ENV, stdout=log, stderr=subprocess.STDOUT)


def finished(build: subprocess.Popen, repo: Path, timeout: float = 2400) -> None:
    if build.wait(timeout=timeout) != 0:
        tail = (repo.parent / "slurm-build.log").read_text()[-3000:]
        raise AssertionError(f"the build through Slurm failed ({build.returncode}):\n{tail}")
    # What `make figures` records after its Snakemake run: every output's hash in dvc.lock.
    sh("dvc", "commit", "--force", "--no-relink", "--quiet", cwd=repo)
