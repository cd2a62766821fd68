"""The warm worker runs a tensor job as the job's own process would (same files, same status,
same messages) and steps aside where it cannot serve a job the same way."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from essential_sparsity.cli import worker

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("worker") / "worker.sock"
    process = subprocess.Popen([sys.executable, "-m", "essential_sparsity.cli.worker", "--serve",
                                str(path)], env=_env())
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline and process.poll() is None, "no worker started"
        time.sleep(0.05)
    yield path
    process.terminate()
    process.wait()


def _env(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != worker.WORKER}
    env.update({k: v for k, v in changes.items() if v is not None})
    return env


def job(args: list[str], **env: str | None) -> tuple[subprocess.CompletedProcess, bool]:
    """Run the CLI with `args`; whether its own process imported torch (if not, the worker's
    child ran the job)."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-m",
                          "essential_sparsity.cli.commands", "--profile", "smoke", *args],
                         cwd=ROOT, env=_env(**env),
                         capture_output=True, text=True)
    imported = any(line.rsplit("|", 1)[-1].strip() == "torch" for line in run.stderr.splitlines())
    return run, imported


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_a_job_through_the_worker_writes_what_its_own_process_writes(server, tmp_path):
    here, imported_here = job(["split", "--task", "bbc-news", "--out-dir", str(tmp_path / "a")])
    served, imported_served = job(["split", "--task", "bbc-news", "--out-dir",
                                   str(tmp_path / "b")], **{worker.WORKER: str(server)})
    assert here.returncode == served.returncode == 0, served.stderr[-2000:]
    assert imported_here and not imported_served
    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_a_failing_job_through_the_worker_keeps_its_status_and_message(server, tmp_path):
    args = ["finetune", "--model", "minilm-l6", "--task", "bbc-news", "--mask",
            str(tmp_path / "none.safetensors"), "--seed", "0", "--data-dir", str(tmp_path),
            "--metrics", str(tmp_path / "metrics.json")]
    served, imported = job(args, **{worker.WORKER: str(server)})
    assert served.returncode == 2 and not imported
    assert f"essential-sparsity finetune: {tmp_path / 'none.safetensors'}: missing" in served.stderr


def test_a_job_with_snakemakes_thread_counts_runs_in_the_worker(server, tmp_path):
    """Snakemake sets OMP_NUM_THREADS and its kin for every shell job: the worker serves it."""
    threads = dict.fromkeys(worker.THREADS, "1")
    here, _ = job(["split", "--task", "bbc-news", "--out-dir", str(tmp_path / "a")], **threads)
    served, imported = job(["split", "--task", "bbc-news", "--out-dir", str(tmp_path / "b")],
                           **{worker.WORKER: str(server)}, **threads)
    assert here.returncode == served.returncode == 0 and not imported, served.stderr[-2000:]
    assert files(tmp_path / "a") == files(tmp_path / "b")


@pytest.mark.parametrize("change", [{"SLURM_JOB_ID": "7"}, {"CUDA_VISIBLE_DEVICES": ""},
                                    {"OMP_NUM_THREADS": "2"}],
                         ids=["under-slurm", "import-time-variable", "one-thread-variable"])
def test_the_worker_steps_aside_for_a_job_it_cannot_serve_the_same_way(server, tmp_path, change):
    run, imported = job(["split", "--task", "bbc-news", "--out-dir", str(tmp_path)],
                        **{worker.WORKER: str(server)}, **change)
    assert run.returncode == 0 and imported


def test_after_an_edit_of_the_library_jobs_run_in_their_own_process(server, tmp_path):
    """A job must run the code Snakemake recorded for it, not what the server imported."""
    source = Path(worker.__file__)
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    try:
        run, imported = job(["split", "--task", "bbc-news", "--out-dir", str(tmp_path)],
                            **{worker.WORKER: str(server)})
    finally:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert run.returncode == 0 and imported


def test_with_no_server_answering_a_job_runs_in_its_own_process(tmp_path):
    run, imported = job(["split", "--task", "bbc-news", "--out-dir", str(tmp_path)],
                        **{worker.WORKER: str(tmp_path / "nobody.sock")})
    assert run.returncode == 0 and imported


def test_a_child_dies_when_its_job_does():
    job_end, child_end = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        job_end.close()
        worker._die_with_job(child_end)
        time.sleep(30)
        os._exit(0)
    child_end.close()
    job_end.close()  # the job's process ended
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def test_run_passes_the_commands_status_and_removes_the_socket(capfd):
    code = "import os, sys; print(os.environ['ESSENTIAL_SPARSITY_WORKER']); sys.exit(3)"
    assert worker.run([sys.executable, "-c", code]) == 3
    socket_path = Path(capfd.readouterr().out.strip())
    assert socket_path.name == "worker.sock" and not socket_path.parent.exists()
