"""The vision stages (Section 4, Figures 3, 6 and 7): pre-train the small ViT with each objective,
then the tables of pre-training losses, normalized weight distributions and downstream drops.

Downstream runs go through the ordinary prune and finetune stages; the weight tables are counted
from the checkpoints on disk (or the hub's, in the paper profile), so a reviewer can recount them.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..catalog import sources
from ..config.levels import VISION_OBJECTIVES, vision_pretrain_settings, vision_pretrained
from ..data import images
from ..evaluation import curves
from ..pruning.scope import classify, scope_weights
from ..records.io import ArtefactError, read_json, write_csv
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


def vision_pretrain_run(params: dict, model: str, out_dir: str | Path) -> dict:
    """Pre-train one vision model with its objective; checkpoints under out_dir/step-K. Work
    happens in out_dir.partial, renamed into place when the run completes; rerunning after a
    kill resumes there from the last checkpoint."""
    if model not in vision_pretrained(params):
        raise ArtefactError(f"{model} is not pre-trained by this profile (vision.models: "
                            f"{', '.join(params['vision']['models'])})")
    settings = vision_pretrain_settings(params)
    objective = VISION_OBJECTIVES[model]
    data, heldout, labels = _pretraining_images(settings)
    out_dir = Path(out_dir)
    work = out_dir.with_name(out_dir.name + ".partial")
    start = time.perf_counter()
    device = job_device(params["resources"]["device"])
    history = vision_pretrain.run(objective, data, heldout, len(labels), settings, work,
                                  _fingerprint(settings, objective, data), desc=model,
                                  device=device)
    summary = {"model": model, "objective": objective, "task": settings["task"],
               "images": len(data["labels"])}
    return pretrain.finish_run(work, out_dir, summary, history, settings, len(data["labels"]),
                               device, start)


def normalized_rows(weight: torch.Tensor) -> np.ndarray:
    """The paper's normalization (sklearn's `normalize`: every row to unit L2 norm), scaled by
    sqrt(fan-in) so that a row's typical weight is 1 whatever the layer's width."""
    from sklearn.preprocessing import normalize

    return normalize(weight.detach().float().numpy()) * math.sqrt(weight.shape[1])


def _layers(params: dict, model: str, location: str | None) -> dict[int, np.ndarray]:
    """Every in-scope weight of each transformer block, normalized, flattened."""
    encoder = sources.load_encoder(model, location)
    model_type = encoder.config.model_type
    layers: dict[int, list[np.ndarray]] = {}
    for name, weight in scope_weights(encoder, params["prune"]["scope"]).items():
        layer = classify(name, model_type)[1]
        layers.setdefault(layer, []).append(normalized_rows(weight).ravel())
    return {layer: np.concatenate(parts) for layer, parts in sorted(layers.items())}


def _roles(params: dict) -> dict[str, str]:
    """The pair Figures 6 and 7 compare (one architecture, two objectives)."""
    return {params["vision"]["supervised"]: "supervised",
            params["vision"]["self_supervised"]: "self-supervised"}


def weight_tables(params: dict,
                  locations: dict[str, str | None]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Figure 7: per model and block, the share of exactly-zero and of near-zero normalized
    weights (|w| <= vision.near_zero), and the histogram of the normalized weights."""
    tau, bins = params["vision"]["near_zero"], params["vision"]["histogram_bins"]
    roles = _roles(params)
    edges = np.linspace(-4.0, 4.0, bins + 1)
    zero_rows, hist_rows = [], []
    for model, location in locations.items():
        layers = _layers(params, model, location)
        everything = np.concatenate(list(layers.values()))
        for layer, values in [*layers.items(), ("all", everything)]:
            zero_rows.append({"model": model, "objective": VISION_OBJECTIVES[model],
                              "role": roles.get(model, ""), "layer": layer,
                              "weights": values.size,
                              "zero": int((values == 0).sum()),
                              "near_zero": int((np.abs(values) <= tau).sum()),
                              "zero_share": float((values == 0).mean()),
                              "near_zero_share": float((np.abs(values) <= tau).mean())})
            if layer == "all":
                continue
            counts, _ = np.histogram(values, bins=edges)
            hist_rows += [{"model": model, "layer": layer, "bin_left": lo, "bin_right": hi,
                           "density": c / (values.size * (hi - lo))}
                          for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)]
    return pd.DataFrame(zero_rows), pd.DataFrame(hist_rows)


def loss_table(run_dirs: list[str | Path]) -> pd.DataFrame:
    """One row per checkpoint of every vision pre-training run, from its run.json."""
    rows = []
    for run_dir in run_dirs:
        summary = read_json(Path(run_dir) / "run.json")
        rows += [{"model": summary["model"], "objective": summary["objective"], **row}
                 for row in summary["history"]]
    columns = ["model", "objective", "step", "train_loss", "heldout_loss", "heldout_accuracy",
               "teacher_entropy", "teacher_batch_entropy"]
    return pd.DataFrame(rows).reindex(columns=columns)


def downstream_tables(params: dict,
                      metric_files: list[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Figures 3 and 6: each vision model's fine-tuned accuracy and drop against sparsity, with
    its pre-training objective, and its essential sparsity."""
    runs = curves.runs_of(metric_files, "model", params["vision"]["models"], "vision")
    curve = curves.curve_tables(params, metric_files, runs)
    drops, essential = curve["drop_vs_sparsity"], curve["essential_sparsity"]
    drops.insert(1, "objective", drops["model"].map(VISION_OBJECTIVES))
    roles = _roles(params)
    drops.insert(2, "role", drops["model"].map(lambda m: roles.get(m, "")))
    return drops.sort_values(["task", "model", "sparsity"], ignore_index=True), essential


def vision_tables(params: dict, run_dirs: list[str], metric_files: list[str],
                  out: dict[str, str | Path]) -> dict[str, pd.DataFrame]:
    """Write every table of Figures 3, 6 and 7."""

    steps = params["vision"]["pretrain"]["steps"]
    here = {Path(d).name: str(Path(d) / f"step-{steps}") for d in run_dirs}
    locations = {m: here.get(m) for m in params["vision"]["models"]}
    zeros, histograms = weight_tables(params, locations)
    drops, essential = downstream_tables(params, metric_files)
    tables = {"losses": loss_table(run_dirs), "zero_weights": zeros,
              "weight_histograms": histograms, "drop_vs_sparsity": drops,
              "essential_sparsity": essential}
    for name, frame in tables.items():
        write_csv(out[name], frame)
    return tables
