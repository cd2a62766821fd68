"""One function per pipeline stage: each reads its inputs, calls the library, writes its outputs
atomically. The Snakemake rules call these through the CLI; tests call them directly."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import torch

from . import data, evaluate, finetune, masks, sources
from .io import atomic_path, read_json, write_json, write_tensors
from .params import finetune_settings
from .scope import scope_weights


def split_task(params: dict, task: str, out_dir: str | Path) -> None:
    """Write the task's train/validation/test splits and their label counts."""
    source = sources.load_task(task)
    frames = data.make_splits(source, params["data"], params["data"]["seed"], task)
    info = {"task": task, "seed": params["data"]["seed"], "settings": params["data"]}
    data.write_splits(out_dir, frames, source.label_names, info)


def prune(params: dict, model: str, method: str, sparsity: float, out_path: str | Path) -> dict:
    """Compute one OMP mask on the pre-trained weights and save it with its sparsity report."""
    encoder = sources.load_encoder(model)
    weights = scope_weights(encoder, params["prune"]["scope"])
    (mask,) = masks.omp_masks(weights, [sparsity], method).values()
    info = {"model": model, "method": method, "target_sparsity": sparsity,
            "scope": params["prune"]["scope"], "model_type": encoder.config.model_type,
            "source": sources.model_location(model)}
    masks.save_mask(out_path, mask, info)
    return read_json(Path(out_path).with_suffix(".json"))


def finetune_run(params: dict, model: str, task: str, mask_path: str | Path, seed: int,
                 data_dir: str | Path, metrics_path: str | Path,
                 checkpoint_path: str | Path | None = None) -> dict:
    """Fine-tune the pre-trained model under a fixed mask; write metrics (and the checkpoint)."""
    settings = finetune_settings(params, task)
    torch.use_deterministic_algorithms(True)
    info = masks.mask_info(mask_path)
    mask = masks.load_mask(mask_path)
    labels = data.label_names(data_dir)
    tokenizer = sources.load_tokenizer(model)
    splits = {s: finetune.encode(tokenizer, data.read_split(data_dir, s), settings["max_length"])
              for s in data.SPLITS}
    net = sources.load_classifier(model, len(labels), seed)
    start = time.perf_counter()
    history = finetune.train(net, splits["train"], mask, settings, seed,
                             desc=f"{task} s={info['target_sparsity']:g} seed={seed}")
    train_seconds = time.perf_counter() - start
    evaluate = {"batch_size": settings["eval_batch_size"], "precision": settings["precision"]}
    test = finetune.evaluate(net, splits["test"], **evaluate)
    validation = finetune.evaluate(net, splits["validation"], **evaluate)
    leaked = finetune.pruned_nonzero(net, mask)
    if leaked:
        raise RuntimeError(f"{leaked} pruned weights became non-zero during fine-tuning")
    report = masks.sparsity_report(mask, info["model_type"])
    record = {"model": model, "task": task, "method": info["method"],
              "sparsity": info["target_sparsity"], "scope_sparsity": report["sparsity"],
              "seed": seed, "metric": "accuracy", "value": test["accuracy"],
              "validation_value": validation["accuracy"], "test_loss": test["loss"],
              "test_examples": test["examples"], "train_examples": len(splits["train"]["labels"]),
              "steps": history["steps"], "train_loss_per_epoch": history["train_loss_per_epoch"],
              "wall_time_s": round(time.perf_counter() - start, 2),
              "train_time_s": round(train_seconds, 2), "settings": settings,
              "mask": str(mask_path), "label_names": labels}
    if checkpoint_path is not None:
        state = {k: v.detach() for k, v in net.state_dict().items()}
        write_tensors(checkpoint_path, state,
                      metadata=finetune.checkpoint_metadata(net, {k: record[k] for k in
                                                                   ("model", "task", "method",
                                                                    "sparsity", "seed")}))
    write_json(metrics_path, record)
    return record


def finetune_tables(params: dict, metric_files: list[str], out_dir: str | Path,
                    metrics_json: str | Path) -> pd.DataFrame:
    """runs.csv (one row per run), drop.csv (drop vs sparsity) and essential_sparsity.csv."""
    out_dir = Path(out_dir)
    runs = evaluate.runs_table(metric_files)
    drops = evaluate.drop_table(runs)
    essential = evaluate.essential_sparsity(drops, params["evaluate"]["epsilon"])
    for name, frame in (("finetune_runs", runs), ("drop_vs_sparsity", drops),
                        ("essential_sparsity", essential)):
        write_csv(out_dir / f"{name}.csv", frame)
    write_json(metrics_json, evaluate.essential_metrics(essential))
    return essential


def mask_table(report_path: str | Path, out_csv: str | Path) -> None:
    """Figure 1's table: pruned weights per component and layer."""
    write_csv(out_csv, evaluate.pruned_by_component(read_json(report_path)))


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
