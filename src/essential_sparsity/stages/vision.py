"""The vision pre-training stage (Section 4, Figures 3, 6 and 7): pre-train the small ViT with
each objective. Downstream runs go through the ordinary prune and finetune stages; the tables are
`vision_tables`, so that a change to how tables are drawn up reruns no pre-training.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch

from ..data import images
from ..records.io import ArtefactError
from ..training import pretrain, vision_pretrain
from ..training.device import job_device


def _pretraining_images(settings: dict) -> tuple[dict, dict, list[str]]:
    """A seeded subset of the pre-training task's training images, and held-out images from its
    official test split (or the rest of the pool when it has none)."""
    source = images.load_image_task(settings["task"])
    order = torch.randperm(len(source.labels),
                           generator=pretrain.derived_generator(settings["seed"], "images", 0))
    chosen = order[:settings["images"]].sort().values
    data = {"images": torch.from_numpy(source.images)[chosen],
            "labels": torch.from_numpy(source.labels)[chosen]}
    if source.fixed_test is not None:
        pool = {"images": torch.from_numpy(source.fixed_test[0]),
                "labels": torch.from_numpy(source.fixed_test[1])}
        rest = torch.arange(len(pool["labels"]))
    else:
        pool, rest = {"images": torch.from_numpy(source.images),
                      "labels": torch.from_numpy(source.labels)}, order[settings["images"]:]
    held = rest[:settings["heldout_images"]]
    if len(chosen) < settings["images"] or len(held) < settings["heldout_images"]:
        raise ArtefactError(f"{settings['task']} has {len(source.labels)} training images: too "
                            f"few for vision.pretrain.images and heldout_images; lower them")
    return data, {k: v[held] for k, v in pool.items()}, source.label_names


def _fingerprint(settings: dict, objective: str, data: dict) -> str:
    """What a resumed run must share with the interrupted one: settings, objective and data."""
    digest = hashlib.sha256(json.dumps([settings, objective], sort_keys=True).encode())
    digest.update(data["images"].numpy().tobytes())
    return digest.hexdigest()


def vision_pretrain_run(settings: dict, device: str, model: str, out_dir: str | Path) -> dict:
    """Pre-train one vision model with its objective and the rule's `settings`
    (`vision_pretrain_settings`); checkpoints under out_dir/step-K. Work happens in
    out_dir.partial, renamed into place when the run completes; rerunning after a kill resumes
    there from the last checkpoint."""
    objective = settings["objective"]
    data, heldout, labels = _pretraining_images(settings)
    out_dir = Path(out_dir)
    work = out_dir.with_name(out_dir.name + ".partial")
    start = time.perf_counter()
    device = job_device(device)
    history = vision_pretrain.run(objective, data, heldout, len(labels), settings, work,
                                  _fingerprint(settings, objective, data), desc=model,
                                  device=device)
    summary = {"model": model, "objective": objective, "task": settings["task"],
               "images": len(data["labels"])}
    return pretrain.finish_run(work, out_dir, summary, history, settings, len(data["labels"]),
                               device, start)
