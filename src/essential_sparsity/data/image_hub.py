"""CIFAR-10, CIFAR-100 and Tiny-ImageNet for the paper profile, read from the Hugging Face cache.

The hub's parquet files are read directly, not through `datasets`: `hf_hub_download` resolves
each file in the cache (offline when HF_HUB_OFFLINE=1), so a missing file fails at once with the
command that fetches it, and the same code runs against a fixture cache in tests. Every image is
decoded once to uint8 RGB, channels first (Tiny-ImageNet holds some greyscale JPEGs). Each
task's files, columns, image side and label names are its entry in workflow/catalog.yaml.
"""

from __future__ import annotations

import numpy as np

from ..catalog.sources import SourceError, hub_dataset_file
from .images import HUB_TASKS, ImageData, decode_images


def _split(task: str, which: str) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow.parquet as pq

    entry = HUB_TASKS[task]
    what = f"task {task}: {entry['hub']}/{entry['files'][which]}"
    table = pq.read_table(hub_dataset_file(task, entry["hub"], entry["files"][which]),
                          columns=[entry["image"], entry["label"]])
    labels = table.column(entry["label"]).to_numpy().astype(np.int64)
    if labels.size and not 0 <= labels.min() <= labels.max() < len(entry["names"]):
        raise SourceError(f"{what}: labels outside 0..{len(entry['names']) - 1}")
    blobs = table.column(entry["image"]).combine_chunks().field("bytes").to_pylist()
    images = decode_images(blobs, what, entry["side"], resize=False,
                           fix="the cached file is not the expected one")
    return images, labels


def load_hub_task(name: str) -> ImageData:
    """All images of a hub task: the train split is the pool that `data.split_indices` splits,
    the official test split (Tiny-ImageNet's valid) is kept apart as the fixed test set."""
    if name not in HUB_TASKS:
        raise SourceError(f"hub image task {name!r} is unknown "
                          f"(known: {', '.join(HUB_TASKS)})")
    images, labels = _split(name, "pool")
    return ImageData(images, labels, list(HUB_TASKS[name]["names"]),
                     fixed_test=_split(name, "test"))
