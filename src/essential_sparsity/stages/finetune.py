"""Sparse fine-tuning under a fixed mask: one run's metrics and checkpoint."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from ..catalog import sources, tasks
from ..data import images, splitting
from ..pruning import masks
from ..records.io import ArtefactError, without_timings, write_csv, write_json, write_tensors
from ..training import finetune, heads
from ..training.device import device_name, job_device, precision


def finetune_run(settings: dict, device: str, model: sources.Model, task: str,
                 mask_path: str | Path, seed: int, data_dir: str | Path,
                 metrics_path: str | Path, checkpoint_path: str | Path | None = None,
                 encoded_path: str | Path | None = None,
                 predictions_path: str | Path | None = None) -> dict:
    """Fine-tune the pre-trained model under a fixed mask with the rule's `settings`
    (`finetune_settings`); write metrics (and the checkpoint, and each test example's result:
    `predictions_path`). A text task's splits come from `encoded_path` (`encode_task`'s
    file)."""
    torch.use_deterministic_algorithms(True)
    info = masks.mask_info(mask_path)
    mask = masks.load_mask(mask_path)
    labels = splitting.label_names(data_dir)
    entry = splitting.stored_task(data_dir, task)
    head = heads.head(entry)
    examples, prepare = _task_inputs(model, entry, head, data_dir, settings, encoded_path)
    net = head.load(model, labels, seed)
    device = job_device(device)
    net = net.to(device)
    start = time.perf_counter()
    history = finetune.train(net, examples["train"], mask, settings, seed,
                             desc=f"{task} s={info['target_sparsity']:g} seed={seed}",
                             prepare=prepare)
    train_seconds = time.perf_counter() - start
    options = {"batch_size": settings["eval_batch_size"], "precision": settings["precision"]}
    test, validation = (head.score(net, examples[split], data_dir, split, prepare, **options)
                        for split in ("test", "validation"))
    metric = entry.metric
    leaked = finetune.pruned_nonzero(net, mask)
    if leaked:
        raise RuntimeError(f"{leaked} pruned weights became non-zero during fine-tuning")
    report = masks.sparsity_report(mask, info["model_type"])
    record = {"model": model.name, "task": task, "method": info["method"],
              "sparsity": info["target_sparsity"], "scope_sparsity": report["sparsity"],
              "seed": seed, "metric": metric, "value": test[metric],
              "validation_value": validation[metric], "test_loss": test["loss"],
              "test_examples": test["examples"], "train_examples": finetune.rows(examples["train"]),
              "steps": history["steps"], "train_loss_per_epoch": history["train_loss_per_epoch"],
              "wall_time_s": round(time.perf_counter() - start, 2),
              "train_time_s": round(train_seconds, 2), "settings": settings,
              "mask": str(mask_path), "label_names": labels, "device": device_name(device),
              "precision": precision(settings["precision"], device.type)}
    for score in head.extra_scores:
        record.update({score: test[score], f"validation_{score}": validation[score]})
    if checkpoint_path is not None:
        state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        write_tensors(checkpoint_path, state,
                      metadata=finetune.checkpoint_metadata(net, {k: record[k] for k in
                                                                   ("model", "task", "method",
                                                                    "sparsity", "seed")}))
    if predictions_path is not None:
        write_csv(predictions_path, pd.DataFrame({"example": range(test["examples"]),
                                                  **test["per_example"]}))
    write_json(metrics_path, without_timings(record))
    return record


def _task_inputs(model: sources.Model, task: tasks.Task, head: heads.Head,
                 data_dir: str | Path, settings: dict, encoded_path: str | Path | None,
                 ) -> tuple[dict, Callable[[dict], dict]]:
    """The splits of a task as stored, and what turns one batch into the model's inputs: token
    ids come encoded (`encode_task`); images stay uint8 and are resized and normalized per batch,
    with the pixel scaling the model was pre-trained with. A question-answering split also keeps
    each token's character span in the context, which only decoding reads."""
    if task.encoded:
        if encoded_path is None:
            raise ArtefactError(f"task {task.name} is text: its runs read the token ids "
                                f"`essential-sparsity encode` writes; pass them with --encoded")
        return splitting.read_encoded(encoded_path, model.name, task.name,
                                      settings["max_length"]), head.inputs
    scaling = sources.load_pixel_scaling(model)

    def prepare(batch: dict) -> dict:
        return {"pixel_values": images.pixel_values(batch["pixel_values"], **scaling),
                "labels": batch["labels"]}

    return {s: splitting.read_image_split(data_dir, s) for s in splitting.SPLITS}, prepare

