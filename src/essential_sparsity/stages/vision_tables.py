"""Figures 3, 6 and 7's tables: pre-training losses, the normalized weight distributions of each
vision model, and downstream drops. The weight tables are counted from the checkpoints on disk (or
the hub's, in the paper profile), so a reviewer can recount them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..catalog import sources
from ..evaluation import curves
from ..pruning.scope import classify, scope_weights
from ..records.io import read_json, write_csv


def normalized_rows(weight: torch.Tensor) -> np.ndarray:
    """The paper's normalization (sklearn's `normalize`: every row to unit L2 norm), scaled by
    sqrt(fan-in) so that a row's typical weight is 1 whatever the layer's width."""
    from sklearn.preprocessing import normalize

    return normalize(weight.detach().float().numpy()) * math.sqrt(weight.shape[1])


def _layers(scope: str, model: sources.Model) -> dict[int, np.ndarray]:
    """Every in-scope weight of each transformer block, normalized, flattened."""
    encoder = sources.load_encoder(model)
    model_type = encoder.config.model_type
    layers: dict[int, list[np.ndarray]] = {}
    for name, weight in scope_weights(encoder, scope).items():
        layer = classify(name, model_type)[1]
        layers.setdefault(layer, []).append(normalized_rows(weight).ravel())
    return {layer: np.concatenate(parts) for layer, parts in sorted(layers.items())}


def weight_tables(settings: dict,
                  locations: dict[str, str | None]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Figure 7: per model and block, the share of exactly-zero and of near-zero normalized
    weights (|w| <= vision.near_zero), and the histogram of the normalized weights."""
    tau, bins, roles = settings["near_zero"], settings["bins"], settings["roles"]
    edges = np.linspace(-4.0, 4.0, bins + 1)
    zero_rows, hist_rows = [], []
    for model, location in locations.items():
        layers = _layers(settings["scope"], sources.Model(model, location))
        everything = np.concatenate(list(layers.values()))
        for layer, values in [*layers.items(), ("all", everything)]:
            zero_rows.append({"model": model, "objective": settings["objectives"][model],
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


def downstream_tables(settings: dict,
                      metric_files: list[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Figures 3 and 6: each vision model's fine-tuned accuracy and drop against sparsity, with
    its pre-training objective, and its essential sparsity."""
    runs = curves.runs_of(metric_files, "model", settings["models"], "vision")
    curve = curves.curve_tables(settings["evaluate"], metric_files, runs)
    drops, essential = curve["drop_vs_sparsity"], curve["essential_sparsity"]
    drops.insert(1, "objective", drops["model"].map(settings["objectives"]))
    drops.insert(2, "role", drops["model"].map(lambda m: settings["roles"].get(m, "")))
    return drops.sort_values(["task", "model", "sparsity"], ignore_index=True), essential


def vision_tables(settings: dict, run_dirs: list[str], metric_files: list[str],
                  out: dict[str, str | Path]) -> dict[str, pd.DataFrame]:
    """Write every table of Figures 3, 6 and 7, by `config.params.vision_tables_settings`."""
    here = {Path(d).name: str(Path(d) / f"step-{settings['steps']}") for d in run_dirs}
    locations = {m: here.get(m) or settings["locations"][m] for m in settings["models"]}
    zeros, histograms = weight_tables(settings, locations)
    drops, essential = downstream_tables(settings, metric_files)
    tables = {"losses": loss_table(run_dirs), "zero_weights": zeros,
              "weight_histograms": histograms, "drop_vs_sparsity": drops,
              "essential_sparsity": essential}
    for name, frame in tables.items():
        write_csv(out[name], frame)
    return tables
