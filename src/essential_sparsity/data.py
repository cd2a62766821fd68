"""Deterministic, stratified, seeded train/validation/test splits, written once as versioned data.

Splits are made before any model sees the data and are shared by every sparsity and seed, so a
difference between two runs is never a difference in examples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .io import ArtefactError, atomic_path, read_json, write_json
from .sources import TaskData

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


def make_splits(task: TaskData, sizes: dict, seed: int,
                name: str = "task") -> dict[str, pd.DataFrame]:
    """train/validation/test frames; a task with an official evaluation split keeps it as test.

    Train and validation sizes are honoured exactly; the test set takes what is left, up to its
    size, so a small task (BBC News) still gets the largest test set it can.
    """
    pool = clean(task.examples, sizes["min_chars"])
    labels = pool["label"].to_numpy()
    n_train, n_val = sizes["train_size"], sizes["validation_size"]
    room = len(pool) - n_val - (n_train or 0)
    if task.fixed_test is not None:
        fixed = clean(task.fixed_test, sizes["min_chars"])
        (test_idx,) = stratified_take(fixed["label"].to_numpy(), [sizes["test_size"]], seed)
        test = fixed.iloc[test_idx]
        n_test = 0
    else:
        n_test = min(sizes["test_size"], room)
    if room < 0 or (task.fixed_test is None and n_test == 0):
        raise ValueError(f"{name}: {len(pool)} usable examples cannot fill data.train_size "
                         f"({n_train}) + data.validation_size ({n_val}) + a test set; lower them "
                         f"in params.yaml")
    test_idx_pool, val_idx, rest = stratified_take(labels, [n_test, n_val, len(pool)], seed)
    if task.fixed_test is None:
        test = pool.iloc[test_idx_pool]
    if len(rest) == 0:
        raise ValueError(f"{name}: no examples left for training after validation and test; "
                         f"set data.train_size or lower data.test_size in params.yaml")
    (train_idx,) = stratified_take(labels[rest], [n_train or len(rest)], seed + 1)
    frames = {"train": pool.iloc[rest[train_idx]], "validation": pool.iloc[val_idx], "test": test}
    return {k: v.reset_index(drop=True)[["text", "text_pair", "label"]] for k, v in frames.items()}


def write_splits(out_dir: str | Path, frames: dict[str, pd.DataFrame], label_names: list[str],
                 info: dict) -> None:
    out_dir = Path(out_dir)
    for split, frame in frames.items():
        with atomic_path(out_dir / f"{split}.jsonl") as tmp:
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
    counts = {s: f["label"].value_counts().sort_index().to_dict() for s, f in frames.items()}
    write_json(out_dir / "meta.json", {**info, "label_names": label_names,
                                       "sizes": {s: len(f) for s, f in frames.items()},
                                       "label_counts": {s: {str(k): int(v) for k, v in c.items()}
                                                        for s, c in counts.items()}})


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
