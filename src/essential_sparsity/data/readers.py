"""An entry's files or hub data set, read through Hugging Face `datasets`: the one reader of
params.yaml's catalog tasks and corpora. Files are CSV, JSON Lines, parquet, a folder of images per
class (a task's), or plain text (a corpus's); a hub data set comes from the local cache. Every
problem is one SourceError line naming the entry (`where`) and the fix."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..catalog.sources import SourceError

if TYPE_CHECKING:  # pandas and datasets are imported where data is read
    import pandas as pd

# file suffix (or a folder) -> the `datasets` builder that reads a task's files
FORMATS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet",
           "folder": "imagefolder"}
# a corpus's: plain text (one document per paragraph) or a table with a text column
CORPUS_FORMATS = {".txt": "text", **{k: v for k, v in FORMATS.items() if k != "folder"}}


def hub_snapshot(where: str, repo: str) -> str:
    """A hub data set's snapshot in the Hugging Face cache; offline and not cached, one line with
    the command that downloads it."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(repo, repo_type="dataset", local_files_only=True)
    except LocalEntryNotFoundError as exc:
        raise SourceError(f"{where}: data set {repo} is not in the Hugging Face "
                          f"cache and the hub is offline; download it on a connected machine "
                          f"(hf download --repo-type dataset {repo})") from exc


def fingerprint(entry: dict) -> list | None:
    """What an entry's data are, cheaply: each file's (or image folder's files') path, size and
    modification time, or a hub data set's snapshot (its revision); None when they are not all
    here, so the entry is read in full and its problem reported."""
    if "hub" in entry:
        try:
            return [hub_snapshot("", entry["hub"])]
        except SourceError:
            return None
    found = []
    for path in map(Path, entry["files"].values()):
        if not path.exists():
            return None
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            stat = file.stat()
            found.append([str(file), stat.st_size, stat.st_mtime_ns])
    return found


def read_entry(where: str, entry: dict, split: str, label: str | None,
               formats: dict[str, str] = FORMATS) -> tuple[pd.DataFrame, list[str] | None]:
    """One split of an entry as a frame of its own columns, read by `datasets` (into a scratch
    cache: nothing is left under ~/.cache), and the names of its classes when the data set
    declares them in its `label` column (a hub data set's ClassLabel, an image folder's folder
    names: its labels are their indices, -1 where a split's labels are hidden, as on GLUE's test
    split; those rows are dropped). Images stay encoded (bytes or a file's path) until
    `images.decode_images`."""
    import datasets

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as cache:
        if "files" in entry:
            found = _read_files(where, Path(entry["files"][split]), split, cache, formats)
        else:
            root = hub_snapshot(where, entry["hub"])
            try:
                found = datasets.load_dataset(root, data_dir=entry.get("data_dir"),
                                              split=entry.get(f"{split}_split", split),
                                              cache_dir=cache)
            except (ValueError, OSError, datasets.exceptions.DatasetGenerationError) as exc:
                raise SourceError(f"{where}: {entry['hub']} cannot be read "
                                  f"({' '.join(str(exc).split())}); fix data_dir or "
                                  f"{split}_split") from exc
        for column, feature in found.features.items():
            if isinstance(feature, datasets.Image):
                found = found.cast_column(column, datasets.Image(decode=False))
        frame = found.to_pandas()  # while the cache holds the table's files
    feature = found.features.get(label)
    if not isinstance(feature, datasets.ClassLabel):
        return frame, None
    return frame[frame[label] >= 0].reset_index(drop=True), feature.names


def _read_files(where: str, path: Path, split: str, cache: str, formats: dict[str, str]):
    """A split from a file of one of `formats` or an image folder (one folder of images per
    class)."""
    import datasets

    if not path.exists():
        raise SourceError(f"{where}: files.{split} {path} does not exist; fix the path")
    builder = formats.get("folder" if path.is_dir() else path.suffix.lower())
    if builder is None:
        raise SourceError(f"{where}: {path} is not a supported format (supported: "
                          f"{', '.join(formats)}); convert it to one")
    files = {"data_dir": str(path)} if path.is_dir() else {"data_files": {split: str(path)}}
    if builder == "text":
        files["sample_by"] = "paragraph"
    try:
        return datasets.load_dataset(builder, **files, split="train" if path.is_dir() else split,
                                     cache_dir=cache)
    except (ValueError, OSError, datasets.exceptions.DatasetGenerationError) as exc:
        # datasets refuses a split without rows, in these words
        if (path.is_file() and path.stat().st_size == 0) or "corresponds to no data" in str(exc):
            raise SourceError(f"{where}: {split} has no rows; give it examples") from exc
        raise SourceError(f"{where}: {path} cannot be read as {builder} "
                          f"({' '.join(str(exc).split())}); fix the file") from exc


def require_columns(where: str, raw: pd.DataFrame, split: str,
                    wanted: dict[str, str | None]) -> None:
    """Every column the entry names (key -> column) is in the split."""
    for key, column in wanted.items():
        if column is not None and column not in raw.columns:
            raise SourceError(f"{where}: {split} has no column {column!r} (its "
                              f"columns: {', '.join(map(str, raw.columns))}); fix {key}")
