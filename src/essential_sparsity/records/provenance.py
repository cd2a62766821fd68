"""Provenance: beside every artefact a job writes, a record of what made it.

`<artefact>.prov.json` names the artefact's MD5 (DVC's hash, so the two can be compared), the
hashes of the parameters the pipeline's DVC stages depend on (as the job's profile resolved them),
the code version, package versions, seeds, device, precision and the MD5 of every input. A
reviewer who did not run the pipeline can check each artefact against it (`essential-sparsity
audit`). It holds only what decides the artefact's content, so two builds of one commit on one
machine write the same bytes and DVC records the same hashes.

When and where the job ran (host, scheduler job, start, wall time, and the stage's own timings
such as a fine-tuning run's training time) is by nature different every time: it goes to
`<artefact>.run.json` beside the record, which DVC ignores (.dvcignore) and git does not track.

A directory's hash is ours, not DVC's: one MD5 over the sorted (relative path, MD5) lines of its
files.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import yaml

from ..config.params import ParamsError
from .io import ArtefactError, inside, read_json, write_json

SUFFIX = ".prov.json"
RUN_SUFFIX = ".run.json"
PACKAGES = ("essential-sparsity", "torch", "transformers", "tokenizers", "safetensors", "numpy",
            "pandas", "scikit-learn", "lm_eval", "papermill", "matplotlib", "snakemake", "dvc")
CODE = ("src", "workflow", "Snakefile")  # what a code version covers
CHUNK = 1 << 20
# Snakemake stamps a directory output once its job has ended, after the record was written.
NOT_CONTENT = (SUFFIX, RUN_SUFFIX, ".snakemake_timestamp")


def record_path(artefact: str | Path, suffix: str = SUFFIX) -> Path:
    artefact = Path(artefact)
    return artefact.with_name(artefact.name + suffix)


def md5(path: str | Path) -> str:
    """A file's MD5 (DVC's hash of a file), or a directory's over its files' (path, MD5)."""
    path = Path(path)
    if path.is_dir():
        lines = "".join(f"{p.relative_to(path).as_posix()} {md5(p)}\n"
                        for p in sorted(path.rglob("*")) if p.is_file()
                        and not p.name.endswith(NOT_CONTENT))
        return hashlib.md5(lines.encode()).hexdigest() + ".tree"
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _lookup(settings: dict, dotted: str):
    value = settings
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def value_hash(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def stage_param_keys(dvc_yaml: str | Path = "dvc.yaml") -> dict[str, list[str]]:
    """Each DVC stage's params keys (`profile`, `vision.tasks`, ...); empty without a dvc.yaml."""
    path = Path(dvc_yaml)
    if not path.is_file():
        return {}
    stages = yaml.safe_load(path.read_text()).get("stages", {})
    return {name: [k for k in stage.get("params", []) if isinstance(k, str)]
            for name, stage in stages.items()}


def params_hashes(settings: dict, keys: Iterable[str]) -> dict[str, str]:
    """The hash of each params key's value in the job's resolved profile: DVC's granularity, so a
    change DVC would not rerun a stage for does not make its artefacts look stale."""
    return {key: value_hash(_lookup(settings, key)) for key in sorted(set(keys))}


def code_version(root: str | Path = ".") -> dict:
    """The git commit, and whether the code differs from it (None outside a git checkout)."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)

    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return {"commit": None, "modified": None}
    existing = [c for c in CODE if (Path(root) / c).exists()]
    dirty = git("status", "--porcelain", "--", *existing).stdout.strip()
    return {"commit": head.stdout.strip(), "modified": bool(dirty)}


def source_date_epoch(root: str | Path = ".") -> int:
    """The date a build's files may carry (the reproducible-builds convention): SOURCE_DATE_EPOCH
    if set, else the commit's time, else 0. PDFs and the report page show it instead of the
    time they were written, so two builds of one commit write the same bytes."""
    if "SOURCE_DATE_EPOCH" in os.environ:
        return int(os.environ["SOURCE_DATE_EPOCH"])
    shown = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=root, capture_output=True,
                           text=True)
    return int(shown.stdout.strip()) if shown.returncode == 0 and shown.stdout.strip() else 0


def package_versions() -> dict[str, str | None]:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {name: version(name) for name in PACKAGES}


def job_context(settings: dict, command: str, seeds: dict, device: str | None,
                precisions: list[str]) -> dict:
    """What every record of one job shares."""
    return {"command": command, "profile": settings["profile"],
            "params": params_hashes(settings, {k for keys in stage_param_keys().values()
                                               for k in keys}),
            "code": code_version(), "packages": package_versions(),
            "python": platform.python_version(), "seeds": seeds, "device": device,
            "precision": precisions}


def write_records(outputs: list[str], inputs: list[str], context: dict, started: float,
                  timings: dict[str, float] | None = None, warm_worker: bool = False) -> None:
    """One record beside each output, and its run record (`timings`: the stage's own;
    `warm_worker`: whether the build's warm worker ran the job); inputs are hashed once for all
    of them."""
    run = {"host": socket.gethostname(), "scheduler_job": os.environ.get("SLURM_JOB_ID"),
           "warm_worker": warm_worker,
           "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
           "wall_time_s": round(time.time() - started, 2), **(timings or {})}
    hashed = {name: md5(name) for name in sorted(set(inputs)) if Path(name).exists()}
    for output in outputs:
        write_json(record_path(output, RUN_SUFFIX), {"artefact": output, **run})
        write_json(record_path(output), {"artefact": output, "md5": md5(output), **context,
                                         "inputs": hashed})


# What must have a record: checkpoints, masks, metrics, per-example results (predictions, a
# causal LM's held-out windows), tables and figures (a record of a directory output, such as a
# pre-training run, covers the files inside it).
ARTEFACTS = ("results/**/*.safetensors", "results/**/metrics.json", "results/**/predictions.csv",
             "results/llm/**/windows.csv", "results/tables/*.csv", "reports/figures/*.png",
             "reports/figures/*.pdf")


def _covered(path: Path, root: Path) -> bool:
    return any(record_path(p).is_file() for p in (path, *path.parents) if p != root
               and root in p.parents)


def dvc_outs(root: Path) -> dict[str, tuple[str, str]]:
    """dvc.lock's outputs: path -> (stage, md5)."""
    lock = root / "dvc.lock"
    if not lock.is_file():
        return {}
    stages = yaml.safe_load(lock.read_text()).get("stages", {})
    return {out["path"]: (name, out.get("md5", "")) for name, stage in stages.items()
            for out in stage.get("outs", [])}


def dvc_md5(root: Path, outs: dict[str, tuple[str, str]], artefact: str) -> tuple[str, str | None]:
    """The artefact's DVC stage and the MD5 DVC recorded for it (None where DVC's cache does not
    hold the directory listing that names it)."""
    for out, (stage, digest) in outs.items():
        if artefact == out:
            return stage, digest
        if artefact.startswith(out + "/") and digest.endswith(".dir"):
            listing = root / ".dvc" / "cache" / "files" / "md5" / digest[:2] / digest[2:]
            if not listing.is_file():
                return stage, None
            entries = {e["relpath"]: e["md5"] for e in json.loads(listing.read_text())}
            return stage, entries.get(artefact[len(out) + 1:])
    return "", None


def record_problems(root: Path, record_file: Path, record: dict, settings: dict,
                    stage_keys: dict, outs: dict, hashes: dict[Path, str]) -> list[str]:
    """One record against its artefact, today's params and DVC's hash. Every path it names must
    lie inside the project (`io.inside`)."""
    def hashed(path: Path) -> str:
        if path not in hashes:
            hashes[path] = md5(path)
        return hashes[path]

    artefact = inside(root, record["artefact"], record_file)
    if not artefact.exists():
        return [f"{record_file}: its artefact {record['artefact']} is missing"]
    problems = []
    if hashed(artefact) != record["md5"]:
        problems.append(f"{artefact}: changed since it was made (MD5 {hashed(artefact)}, "
                        f"recorded {record['md5']})")
    try:
        stage, dvc = dvc_md5(root, outs, record["artefact"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        stage, dvc = "", None
        problems.append(f"{artefact}: DVC's cache listing of its directory is unreadable "
                        f"({exc!r}); fetch it again (dvc fetch)")
    now = params_hashes(settings, stage_keys.get(stage, []))
    stale = sorted(k for k, v in now.items() if record["params"].get(k) != v)
    if stale:
        problems.append(f"{artefact}: made with other {', '.join(stale)} than params.yaml's "
                        f"(profile {record['profile']}); rebuild it (dvc repro)")
    if dvc is not None and not record["md5"].endswith(".tree") and dvc != record["md5"]:
        problems.append(f"{artefact}: its record's MD5 {record['md5']} is not the {dvc} that "
                        f"dvc.lock's {stage} stage recorded")
    inputs = {inside(root, name, record_file): digest for name, digest in record["inputs"].items()}
    changed = sorted(str(path.relative_to(root)) for path, digest in inputs.items()
                     if path.exists() and hashed(path) != digest)
    if changed:
        problems.append(f"{artefact}: its input {changed[0]} changed since it was made"
                        + (f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""))
    return problems


def _dvc_metadata(path: Path, read: Callable[[], dict], problems: list[str]) -> dict:
    """dvc.yaml's or dvc.lock's contents as `read` gives them; empty, and one line, when the
    file is damaged (the records are still checked against everything else)."""
    try:
        return read()
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError) as exc:
        problems.append(f"{path}: not readable DVC metadata ({' '.join(str(exc).split())}); "
                        f"restore it (git checkout {path.name})")
        return {}


def provenance_problems(root: str | Path,
                        load_settings: Callable[[str], dict]) -> list[str]:
    """Every artefact has a record, and every record holds (`load_settings(profile)` resolves
    today's params.yaml); a damaged record is one line and the next is checked."""
    root = Path(root)
    missing = [f"{path}: no provenance record ({record_path(path).name} or one of a directory "
               f"holding it); rebuild it" for pattern in ARTEFACTS
               for path in sorted(root.glob(pattern)) if not _covered(path, root)]
    problems: list[str] = []
    stage_keys = _dvc_metadata(root / "dvc.yaml", lambda: stage_param_keys(root / "dvc.yaml"),
                               problems)
    outs, hashes = _dvc_metadata(root / "dvc.lock", lambda: dvc_outs(root), problems), {}
    for record_file in sorted([*root.glob(f"results/**/*{SUFFIX}"),
                               *root.glob(f"reports/**/*{SUFFIX}")]):
        try:
            record = read_json(record_file)
            settings = load_settings(record.get("profile"))
            problems += record_problems(root, record_file, record, settings, stage_keys, outs,
                                        hashes)
        except ArtefactError as exc:
            problems.append(str(exc))
        except ParamsError as exc:  # the record names a profile params.yaml cannot resolve
            problems.append(f"{record_file}: {exc}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problems.append(f"{record_file}: not a readable provenance record ({exc!r}); "
                            f"rebuild its artefact")
    return missing + problems
