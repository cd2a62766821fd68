"""Deterministic, stratified, seeded train/validation/test splits, written once as versioned data.

Splits are made before any model sees the data and are shared by every sparsity and seed, so a
difference between two runs is never a difference in examples.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..catalog.sources import TaskData
from ..catalog.tasks import Task, task
from ..records.io import (
    ArtefactError,
    atomic_path,
    read_json,
    read_metadata_json,
    read_tensors,
    write_json,
    write_tensors,
)
from .images import ImageData

if TYPE_CHECKING:  # torch is imported where tensors are made: the catalog check splits text
    import torch

SPLITS = ("train", "validation", "test")


def clean(frame: pd.DataFrame, min_chars: int) -> pd.DataFrame:
    """Drop near-empty texts and exact duplicates (a duplicate across splits leaks the label)."""
    frame = frame.assign(text=frame["text"].str.strip(), text_pair=frame["text_pair"].str.strip())
    frame = frame[frame["text"].str.len() >= min_chars]
    return frame.drop_duplicates(subset=["text", "text_pair"]).reset_index(drop=True)


def _quotas(counts: np.ndarray, size: int) -> np.ndarray:
    """Split `size` over classes in proportion to `counts` (largest remainder, ties by class)."""
    if size == 0:
        return np.zeros_like(counts)
    exact = counts * size / counts.sum()
    quota = np.floor(exact).astype(int)
    leftover = size - quota.sum()
    order = np.lexsort((np.arange(len(counts)), -(exact - quota)))
    quota[order[:leftover]] += 1
    return np.minimum(quota, counts)


def stratified_take(labels: np.ndarray, sizes: list[int], seed: int) -> list[np.ndarray]:
    """Disjoint index sets of the given sizes, each with the class proportions of `labels`."""
    rng = np.random.default_rng(seed)
    pools = {c: list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)}
    taken = []
    for size in sizes:
        classes = sorted(pools)
        counts = np.array([len(pools[c]) for c in classes])
        size = min(size, int(counts.sum()))
        picks = []
        for c, q in zip(classes, _quotas(counts, size), strict=True):
            picks.extend(pools[c][:q])
            pools[c] = pools[c][q:]
        taken.append(np.sort(np.array(picks, dtype=int)))
    return taken


def split_indices(labels: np.ndarray, sizes: dict, seed: int, name: str = "task",
                  fixed_labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Indices of train, validation and test; test indexes `fixed_labels` when the task has an
    official evaluation split, else the pool. Text and image tasks split by this one rule.

    Train and validation sizes are honoured exactly; the test set takes what is left, up to its
    size, so a small task (BBC News) still gets the largest test set it can.
    """
    n_train, n_val = sizes["train_size"], sizes["validation_size"]
    room = len(labels) - n_val - (n_train or 0)
    if fixed_labels is not None:
        (test,) = stratified_take(fixed_labels, [sizes["test_size"]], seed)
        n_test = 0
    else:
        n_test = min(sizes["test_size"], room)
    if room < 0 or (fixed_labels is None and n_test == 0):
        raise ValueError(f"{name}: {len(labels)} usable examples cannot fill data.train_size "
                         f"({n_train}) + data.validation_size ({n_val}) + a test set; lower them "
                         f"in params.yaml")
    test_pool, val, rest = stratified_take(labels, [n_test, n_val, len(labels)], seed)
    if len(rest) == 0:
        raise ValueError(f"{name}: no examples left for training after validation and test; "
                         f"set data.train_size or lower data.test_size in params.yaml")
    (train,) = stratified_take(labels[rest], [n_train or len(rest)], seed + 1)
    return {"train": rest[train], "validation": val,
            "test": test if fixed_labels is not None else test_pool}


def make_splits(task: TaskData, sizes: dict, seed: int,
                name: str = "task") -> dict[str, pd.DataFrame]:
    """train/validation/test frames; a task with an official evaluation split keeps it as test."""
    pool = clean(task.examples, sizes["min_chars"])
    fixed = None if task.fixed_test is None else clean(task.fixed_test, sizes["min_chars"])
    index = split_indices(pool["label"].to_numpy(), sizes, seed, name,
                          None if fixed is None else fixed["label"].to_numpy())
    frames = {split: (fixed if split == "test" and fixed is not None else pool).iloc[rows]
              for split, rows in index.items()}
    columns = ["text", "text_pair", "label"]
    columns += [c for c in pool.columns if c not in columns]  # a task's own: SQuAD's answers
    return {k: v.reset_index(drop=True)[columns] for k, v in frames.items()}


def write_splits(out_dir: str | Path, frames: dict[str, pd.DataFrame], label_names: list[str],
                 info: dict) -> None:
    out_dir = Path(out_dir)
    for split, frame in frames.items():
        with atomic_path(out_dir / f"{split}.jsonl") as tmp:
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
    _write_meta(out_dir, {s: f["label"].to_numpy() for s, f in frames.items()}, label_names, info)


def _write_meta(out_dir: Path, labels: dict[str, np.ndarray], label_names: list[str],
                info: dict) -> None:
    """Written last: a split directory with its meta.json is complete."""
    counts = {s: dict(zip(*np.unique(v, return_counts=True), strict=True))
              for s, v in labels.items()}
    write_json(out_dir / "meta.json", {**info, "label_names": label_names,
                                       "sizes": {s: len(v) for s, v in labels.items()},
                                       "label_counts": {s: {str(k): int(v) for k, v in c.items()}
                                                        for s, c in counts.items()}})


def unique_images(images: np.ndarray) -> np.ndarray:
    """Indices of the first copy of every distinct image: a duplicate across splits leaks the
    label, as a duplicate text does."""
    seen: dict[bytes, int] = {}
    for i, row in enumerate(images.reshape(len(images), -1)):
        seen.setdefault(hashlib.sha1(row.tobytes()).digest(), i)
    return np.array(sorted(seen.values()), dtype=int)


def make_image_splits(task: ImageData, sizes: dict, seed: int,
                      name: str = "task") -> dict[str, dict[str, np.ndarray]]:
    """train/validation/test images and labels, by the text tasks' rule (`split_indices`)."""
    keep = unique_images(task.images)
    pool = {"images": task.images[keep], "labels": task.labels[keep]}
    fixed = None
    if task.fixed_test is not None:
        test_keep = unique_images(task.fixed_test[0])
        fixed = {"images": task.fixed_test[0][test_keep], "labels": task.fixed_test[1][test_keep]}
    index = split_indices(pool["labels"], sizes, seed, name,
                          None if fixed is None else fixed["labels"])
    return {split: {k: v[rows] for k, v in (fixed if split == "test" and fixed else pool).items()}
            for split, rows in index.items()}


def write_image_splits(out_dir: str | Path, splits: dict[str, dict[str, np.ndarray]],
                       label_names: list[str], info: dict) -> None:
    import torch

    out_dir = Path(out_dir)
    for split, arrays in splits.items():
        write_tensors(out_dir / f"{split}.safetensors",
                      {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()})
    _write_meta(out_dir, {s: a["labels"] for s, a in splits.items()}, label_names, info)


def read_image_split(data_dir: str | Path, split: str) -> dict[str, torch.Tensor]:
    """uint8 images [n, c, h, w] under `pixel_values` (resized and normalized per batch, for the
    model at hand) and `labels`."""
    import torch

    arrays = read_tensors(Path(data_dir) / f"{split}.safetensors")
    if set(arrays) != {"images", "labels"} or arrays["images"].dtype != torch.uint8:
        raise ArtefactError(f"{data_dir}/{split}.safetensors: expected uint8 images and labels; "
                            f"delete {data_dir} and rebuild")
    return {"pixel_values": arrays["images"], "labels": arrays["labels"]}


def read_split(data_dir: str | Path, split: str) -> pd.DataFrame:
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise ArtefactError(f"{path}: missing; rebuild it with snakemake {path}")
    try:
        frame = pd.read_json(path, lines=True, dtype={"text": str, "text_pair": str})
    except ValueError as exc:
        raise ArtefactError(f"{path}: corrupt ({exc}); delete {data_dir} and rebuild") from exc
    if not {"text", "text_pair", "label"} <= set(frame.columns):
        raise ArtefactError(f"{path}: expected columns text, text_pair, label; rebuild it")
    return frame.fillna({"text_pair": ""})


def label_names(data_dir: str | Path) -> list[str]:
    return read_json(Path(data_dir) / "meta.json")["label_names"]


def stored_task(data_dir: str | Path, name: str) -> Task:
    """The task `name` whose splits a directory holds, with its kind: a catalog task's from the
    entry it was split from (recorded in meta.json), so the runs that read it need no params."""
    return task(name, read_json(Path(data_dir) / "meta.json").get("entry"))


def split_tensors(tensors: dict[str, torch.Tensor], split: str) -> dict[str, torch.Tensor]:
    """One split's tensors of a file that keys them `split/name`."""
    prefix = f"{split}/"
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def read_encoded(path: str | Path, model: str, task: str,
                 max_length: int) -> dict[str, dict[str, torch.Tensor]]:
    """Split -> tensors of `encode_task`'s file, refused if encoded for another model, task or
    max_length than the run's."""
    stored = read_metadata_json(path, "info")
    wanted = {"model": model, "task": task, "max_length": max_length}
    for key, value in wanted.items():
        if stored.get(key) != value:
            raise ArtefactError(f"{path}: encoded with {key} {stored.get(key)}, the run's is "
                                f"{value}; rebuild it with snakemake {path}")
    tensors = read_tensors(path)
    return {split: split_tensors(tensors, split) for split in SPLITS}
