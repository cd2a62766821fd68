"""A warm start for a build's tensor jobs: one server imports torch and transformers once and
forks a child for each job, so that no job pays those imports itself.

A fine-tuning, pruning or causal-LM job spends about 4 s of a 2-core machine importing torch and
transformers before it computes anything; a default build runs about 250 such jobs, some 9
minutes of its wall time. `python -m essential_sparsity.cli.worker CMD...` starts the server, runs
CMD (the Makefile's build) with WORKER naming the server's socket, and stops the server when CMD
ends. The CLI of each tensor job (`delegate`) sends its arguments, working directory, environment
and standard streams to the server; the forked child runs the job exactly as the CLI would and
sends back its exit status. What a job computes does not change: the child starts from the
server's state, in which nothing has run but the imports.

A job runs in its own process as before wherever the server cannot serve it the same way: no
server (a job run by hand), a job under a scheduler (Slurm: it must compute inside its own
allocation), or an environment that differs from the server's in a variable read at import time
(CUDA_VISIBLE_DEVICES, HF_HUB_OFFLINE, ...), or after the library's code changed (an edit
during the build: the job must run the code Snakemake records for it). The thread counts Snakemake
sets for every job (OMP_NUM_THREADS and its kin, one value) are not such a difference: the child
gives torch that many threads, as OpenMP would in a process of the job's own. Each job's run
record says whether the worker ran it (`warm_worker`). A child dies with its
job: when the job's process ends (killed by Snakemake, say), the socket closes and the child
stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path

WORKER = "ESSENTIAL_SPARSITY_WORKER"
# Read when torch, transformers or huggingface_hub import: a job whose value differs from the
# server's would see the server's.
IMPORT_TIME = ("CUDA_", "HF_", "TRANSFORMERS_", "TORCH", "PYTORCH_", "OMP_", "MKL_", "KMP_")
# The thread counts Snakemake gives every shell job (its `threads`, one value in each): a fresh
# process's OpenMP would read them, so the child sets torch's threads from them instead.
THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS",
           "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
SCHEDULED = ("SLURM_JOB_ID",)
PRELOAD = ("torch", "safetensors.torch", "transformers", "essential_sparsity.stages.finetune",
           "transformers.models.bert.modeling_bert", "transformers.models.vit.modeling_vit",
           "transformers.models.llama.modeling_llama", "transformers.models.opt.modeling_opt")
_LENGTH = struct.Struct("!I")


def _import_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items()
            if k.startswith(IMPORT_TIME) and k != WORKER and not (k in THREADS and _threads(env))}


def _threads(env: dict[str, str]) -> int | None:
    """The one thread count a job's variables name (as Snakemake sets them), else None."""
    values = {env.get(name) for name in THREADS}
    value = values.pop() if len(values) == 1 else None
    return int(value) if value and value.isdigit() and int(value) > 0 else None


def _code_stamp() -> list[tuple[str, int, int]]:
    """Each library file's path, size and modification time: what the server imported."""
    package = Path(__file__).parents[1]
    files = sorted(package.rglob("*.py"))
    return [(f.relative_to(package).as_posix(), f.stat().st_size, f.stat().st_mtime_ns)
            for f in files]


def delegate(argv: list[str]) -> int | None:
    """Run the CLI job `argv` (its arguments) in the server's child and return its exit status,
    or None where no server may run it (the caller then runs it in this process)."""
    path = os.environ.get(WORKER)
    if not path or any(name in os.environ for name in SCHEDULED):
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        return None
    with conn:
        request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)})
        body = request.encode()
        sys.stdout.flush()
        sys.stderr.flush()
        socket.send_fds(conn, [_LENGTH.pack(len(body))], [0, 1, 2])
        conn.sendall(body)
        replies = conn.makefile("r")
        if replies.readline() != "started\n":  # refused, or the server went away first
            return None
        status = replies.readline()
    if not status:
        print("essential-sparsity: the job's worker process ended without an exit status "
              "(killed?)", file=sys.stderr)
        return 1
    return int(status)


def serve(path: str) -> None:
    """Accept jobs on the socket `path` until killed, one forked child each."""
    import importlib

    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends the server without a traceback
    own = _import_env(dict(os.environ))  # before the imports, which set some of their own
    code = _code_stamp()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)  # jobs that connect while the imports run wait for them
    for module in PRELOAD:
        importlib.import_module(module)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished children
    parent = os.getppid()
    listener.settimeout(1.0)
    while os.getppid() == parent:  # the build's process gone (killed): stop within a second
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.setblocking(True)
        try:
            request, fds = _receive(conn)
        except (OSError, ValueError, struct.error):  # the job hung up: nothing to run
            conn.close()
            continue
        if _import_env(request["env"]) != own or _code_stamp() != code:
            _close(conn, fds)  # the job runs in its own process
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() == 0:
            listener.close()
            _child(conn, request, fds)
        _close(conn, fds)


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    head, fds, _, _ = socket.recv_fds(conn, _LENGTH.size, 3)
    (size,) = _LENGTH.unpack(head)
    body = b""
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ConnectionError("the job hung up before it sent its request")
        body += chunk
    return json.loads(body), fds


def _close(conn: socket.socket, fds: list[int]) -> None:
    conn.close()
    for fd in fds:
        os.close(fd)


def _child(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """Become the job: its streams, directory and environment, then the CLI. Never returns: a
    child that did would go on serving."""
    status = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the job may wait for its subprocesses
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a process of its own
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        threads = _threads(os.environ)
        if threads:
            import torch

            torch.set_num_threads(threads)
        sys.argv = ["essential-sparsity", *request["argv"]]
        conn.sendall(b"started\n")
        threading.Thread(target=_die_with_job, args=(conn,), daemon=True).start()
        from .commands import main

        status = main(request["argv"], delegated=True)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # as an uncaught exception ends a process: traceback, status 1
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        with contextlib.suppress(OSError):
            conn.sendall(f"{status}\n".encode())
        os._exit(status)


def _die_with_job(conn: socket.socket) -> None:
    """The job's process ended before the child did (killed, say): stop the child too."""
    if not conn.recv(1):
        os.kill(os.getpid(), signal.SIGKILL)


def run(command: list[str]) -> int:
    """Run `command` with a server for its jobs; the server stops when the command ends."""
    with tempfile.TemporaryDirectory(prefix="essential-sparsity-") as tmp:
        path = str(Path(tmp) / "worker.sock")
        server = subprocess.Popen([sys.executable, "-m", "essential_sparsity.cli.worker",
                                   "--serve", path])
        try:
            return subprocess.call(command, env={**os.environ, WORKER: path})
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
    else:
        sys.exit(run(sys.argv[1:]))
