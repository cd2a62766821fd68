"""Split a task's examples into train, validation and test, one rule for text and images."""

from __future__ import annotations

from pathlib import Path

from ..catalog import entries, sources, tasks
from ..data import arithmetic, images, splitting


def split_task(params: dict, task: str, out_dir: str | Path) -> None:
    """Write the task's train/validation/test splits and their label counts: text as JSON
    lines, images as uint8 tensors, split by one rule."""
    info = {"task": task, "seed": params["data"]["seed"], "settings": params["data"]}
    kind = tasks.task(task).kind
    if kind == tasks.IMAGE:
        source = images.load_image_task(task)
        arrays = splitting.make_image_splits(source, params["data"], params["data"]["seed"], task)
        splitting.write_image_splits(out_dir, arrays, source.label_names, info)
        return
    if kind == tasks.ARITHMETIC:
        info["generated"] = params["arithmetic"]["generated"]
        source = arithmetic.load_arithmetic_task(task, info["generated"])
    elif task in entries.user_tasks(params):
        info["entry"] = entries.user_tasks(params)[task]
        source = entries.load_task(task, info["entry"])
    else:
        source = sources.load_task(task)
    frames = splitting.make_splits(source, params["data"], params["data"]["seed"], task)
    splitting.write_splits(out_dir, frames, source.label_names, info)
