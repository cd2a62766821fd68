"""Split a task's examples into train, validation and test, one rule for text and images."""

from __future__ import annotations

from pathlib import Path

from ..catalog import entries, sources, tasks
from ..data import arithmetic, images, splitting


def split_task(settings: dict, task: str, out_dir: str | Path) -> None:
    """Write the task's train/validation/test splits and their label counts with the rule's
    `settings` (`split_settings`): text as JSON lines, images as uint8 tensors, split by one
    rule. A catalog task's entry is recorded with them: the runs that read the splits learn its
    kind from it (`splitting.stored_task`)."""
    data = settings["data"]
    info = {"task": task, "seed": data["seed"], "settings": data}
    kind = tasks.task(task, settings.get("entry")).kind
    if "entry" in settings:
        info["entry"] = settings["entry"]
        source = entries.load_task(task, info["entry"])
    elif kind == tasks.IMAGE:
        source = images.load_image_task(task)
    elif kind == tasks.ARITHMETIC:
        info["generated"] = settings["generated"]
        source = arithmetic.load_arithmetic_task(task, info["generated"])
    else:
        source = sources.load_task(task)
    if kind == tasks.IMAGE:
        arrays = splitting.make_image_splits(source, data, data["seed"], task)
        splitting.write_image_splits(out_dir, arrays, source.label_names, info)
        return
    frames = splitting.make_splits(source, data, data["seed"], task)
    splitting.write_splits(out_dir, frames, source.label_names, info)
