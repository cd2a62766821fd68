"""Split a task's examples into train, validation and test, one rule for text and images."""

from __future__ import annotations

from pathlib import Path

from .. import arithmetic, catalog, data, images, sources


def split_task(params: dict, task: str, out_dir: str | Path) -> None:
    """Write the task's train/validation/test splits and their label counts: text as JSON
    lines, images as uint8 tensors, split by one rule."""
    info = {"task": task, "seed": params["data"]["seed"], "settings": params["data"]}
    if images.is_image_task(task):
        source = images.load_image_task(task)
        arrays = data.make_image_splits(source, params["data"], params["data"]["seed"], task)
        data.write_image_splits(out_dir, arrays, source.label_names, info)
        return
    if task in arithmetic.ARITHMETIC_TASKS:
        info["generated"] = params["arithmetic"]["generated"]
        source = arithmetic.load_arithmetic_task(task, info["generated"])
    elif task in catalog.user_tasks(params):
        info["entry"] = catalog.user_tasks(params)[task]
        source = catalog.load_task(task, info["entry"])
    else:
        source = sources.load_task(task)
    frames = data.make_splits(source, params["data"], params["data"]["seed"], task)
    data.write_splits(out_dir, frames, source.label_names, info)
