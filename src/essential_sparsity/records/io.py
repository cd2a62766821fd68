"""Artefact I/O: every file is written to a temporary name and renamed, so an interrupted job never
leaves a half-written file that looks complete; safetensors only, never pickle. Torch is imported
only by the functions that read or write tensors: the CLI, the tables and the figures import this
module without paying torch's start-up."""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError

if TYPE_CHECKING:
    import pandas as pd
    import torch

_UMASK = os.umask(0)
os.umask(_UMASK)


class ArtefactError(ValueError):
    """An artefact on disk is missing or unreadable; the message names the file and the fix."""


def _remove_stale(path: Path) -> None:
    """Remove what a killed writer of `path` left: its temporary files or directories. Snakemake
    runs one job per output, so no live writer shares them."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; rename it onto `path` only if the block
    succeeds (a directory left from an earlier run is replaced)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | Path, data: object) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    """A tidy table (floats to six significant digits), written like every artefact."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


def without_timings(record: dict) -> dict:
    """A record as its artefact stores it: the stage's timings (`*_time_s`) change from run to
    run, so they go to the job's run record (provenance.RUN_SUFFIX), not into hashed content."""
    return {k: v for k, v in record.items() if not k.endswith("_time_s")}


def read_json(path: str | Path) -> dict:
    """A JSON object the pipeline wrote, or an ArtefactError naming the file: missing, a
    directory, not UTF-8, not JSON, or JSON of another shape (a list where a record belongs)."""
    path = Path(path)
    _must_be_file(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtefactError(f"{path}: not readable JSON ({exc}); delete it and rebuild it with "
                            f"snakemake {path}") from exc
    return _json_object(text, path, "it")


def _json_object(text: str, path: Path, what: str) -> dict:
    """`text` as a JSON object, or an ArtefactError naming the file and `what` in it held it."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtefactError(f"{path}: {what} is not JSON ({exc}); delete it and rebuild it "
                            f"with snakemake {path}") from exc
    if not isinstance(value, dict):
        raise ArtefactError(f"{path}: {what} is a JSON {type(value).__name__}, not the object "
                            f"the pipeline writes; delete it and rebuild it with snakemake {path}")
    return value


def _must_be_file(path: Path) -> None:
    if not path.is_file():
        what = "a directory, not a file" if path.is_dir() else "missing"
        raise ArtefactError(f"{path}: {what}; rebuild it with snakemake {path}")


def inside(root: str | Path, name: object, named_by: str | Path) -> Path:
    """root/name for a path that an artefact names, refused when it leads out of the project
    (`..`, an absolute path): whoever checks artefacts reads only the project's files."""
    root = Path(root)
    top = os.path.abspath(root)
    if not isinstance(name, str) or os.path.commonpath(
            [top, os.path.abspath(os.path.join(top, name))]) != top:
        raise ArtefactError(f"{named_by}: names {name!r}, which is not a path inside the project "
                            f"{root}; rebuild it")
    return root / name


def safetensors_bytes(tensors: dict[str, torch.Tensor],
                      metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file whose header has one order: safetensors writes the metadata from a hash
    map, in an order that changes from process to process, so the same tensors would hash
    differently in every build. The data and the offsets are safetensors' own."""
    from safetensors.torch import save

    raw = save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + raw[8 + size:]


def write_tensors(path: str | Path, tensors: dict[str, torch.Tensor],
                  metadata: dict[str, str] | None = None) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(safetensors_bytes(tensors, metadata))


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    _must_be_file(path)
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise _corrupt(path, exc) from exc


def read_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    path = Path(path)
    _must_be_file(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise _corrupt(path, exc) from exc


def _corrupt(path: Path, exc: Exception) -> ArtefactError:
    return ArtefactError(f"{path}: corrupt safetensors file ({exc}); delete it and rebuild with "
                         f"snakemake {path}")


def read_metadata_json(path: str | Path, key: str, required: bool = True) -> dict | None:
    """The JSON object a safetensors file keeps under metadata `key` (None when it has none and
    none is required), or an ArtefactError naming the file and the key."""
    metadata = read_metadata(path)
    if key not in metadata:
        if not required:
            return None
        raise ArtefactError(f"{path}: has no {key!r} metadata, which the pipeline writes; delete "
                            f"it and rebuild it with snakemake {path}")
    return _json_object(metadata[key], Path(path), f"its {key!r} metadata")
