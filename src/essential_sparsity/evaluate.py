"""Tidy tables from per-run metrics, and essential sparsity.

Essential sparsity of a model on a task (the paper's Section 3, epsilon = 1 point): the largest
sparsity on the grid whose metric is at least the dense metric minus epsilon. The dense metric is
the run at sparsity 0 of the same model, task and seed set; with several seeds, means are compared.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .io import ArtefactError, read_json

RUN_COLUMNS = ["model", "task", "method", "sparsity", "seed", "metric", "value",
               "validation_value", "test_loss", "steps", "wall_time_s", "scope_sparsity"]


def runs_table(metric_files: list[str | Path]) -> pd.DataFrame:
    """One row per fine-tuning run, sorted, from the runs' metrics.json files."""
    rows = []
    for path in metric_files:
        record = read_json(path)
        missing = [c for c in RUN_COLUMNS if c not in record]
        if missing:
            raise ArtefactError(f"{path}: lacks {missing}; rerun that fine-tuning job")
        rows.append({c: record[c] for c in RUN_COLUMNS})
    if not rows:
        raise ArtefactError("no metrics.json given: nothing to tabulate")
    frame = pd.DataFrame(rows, columns=RUN_COLUMNS)
    return frame.sort_values(["model", "task", "method", "sparsity", "seed"], ignore_index=True)


def drop_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean metric per (model, task, method, sparsity) and its drop from the dense mean."""
    keys = ["model", "task", "method", "sparsity"]
    summary = (runs.groupby(keys, as_index=False)
               .agg(metric=("metric", "first"), value=("value", "mean"),
                    value_std=("value", "std"), seeds=("seed", "nunique")))
    summary["value_std"] = summary["value_std"].fillna(0.0)
    dense = summary[summary["sparsity"] == 0].set_index(["model", "task", "method"])["value"]
    index = pd.MultiIndex.from_frame(summary[["model", "task", "method"]])
    if not index.isin(dense.index).all():
        lacking = summary.loc[~index.isin(dense.index), ["model", "task", "method"]].iloc[0]
        raise ArtefactError(f"no dense (sparsity 0) run for {tuple(lacking)}: the grid in "
                            f"params.yaml prune.sparsities must contain 0")
    summary["dense_value"] = dense.reindex(index).to_numpy()
    summary["drop"] = summary["dense_value"] - summary["value"]
    return summary


def essential_sparsity(drops: pd.DataFrame, epsilon: float) -> pd.DataFrame:
    """Per (model, task, method): the largest grid sparsity within epsilon of dense."""
    rows = []
    for (model, task, method), group in drops.groupby(["model", "task", "method"]):
        within = group[group["drop"] <= epsilon]
        best = within.loc[within["sparsity"].idxmax()]
        beyond = group[group["sparsity"] > best["sparsity"]]
        rows.append({"model": model, "task": task, "method": method,
                     "essential_sparsity": float(best["sparsity"]),
                     "dense_value": float(best["dense_value"]),
                     "value_at_essential": float(best["value"]),
                     "next_sparsity": float(beyond["sparsity"].min()) if len(beyond) else None,
                     "drop_at_next": float(beyond.sort_values("sparsity")["drop"].iloc[0])
                     if len(beyond) else None,
                     "epsilon": epsilon, "grid_points": len(group)})
    return pd.DataFrame(rows)


def essential_metrics(table: pd.DataFrame) -> dict:
    """Nested {model: {task: {method: sparsity}}} for `dvc metrics show`."""
    out: dict = {}
    for row in table.itertuples():
        out.setdefault(row.model, {}).setdefault(row.task, {})[row.method] = row.essential_sparsity
    return out


def pruned_by_component(report: dict) -> pd.DataFrame:
    """Figure 1's table: pruned weights per component and layer from a mask's sparsity report."""
    frame = pd.DataFrame(report["matrices"])
    return (frame.groupby(["component", "layer"], as_index=False)[["weights", "pruned"]].sum()
            .assign(sparsity=lambda f: f["pruned"] / f["weights"],
                    share_of_pruned=lambda f: f["pruned"] / f["pruned"].sum()))
