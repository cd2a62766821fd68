"""Tidy tables from per-run metrics, and essential sparsity.

Essential sparsity of a model on a task (the paper's Section 3, epsilon = 1 point): the largest
sparsity on the grid whose metric is at least the dense metric minus epsilon. The dense metric is
the run at sparsity 0 of the same model, task and seed set; with several seeds, means are compared.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config.levels import LTH, parse_nm
from ..records.io import ArtefactError, read_json
from . import bootstrap

RUN_COLUMNS = ["model", "task", "method", "sparsity", "seed", "metric", "value",
               "validation_value", "test_loss", "test_examples", "steps", "scope_sparsity"]


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


def runs_of(metric_files: list[str | Path], column: str, expected: list[str],
            what: str) -> pd.DataFrame:
    """`runs_table`, for a figure whose runs must all be of the `expected` models or tasks
    (`column`): a stray run stops its table rather than joining the curves unlabelled."""
    runs = runs_table(metric_files)
    unknown = sorted(set(runs[column]) - set(expected))
    if unknown:
        raise ArtefactError(f"runs of {unknown[0]} are not {what} runs of this profile "
                            f"({', '.join(expected)})")
    return runs


def drop_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean metric per (model, task, method, sparsity) and its drop from the dense mean.

    Every mask at sparsity 0 keeps every weight, so the dense runs (those at sparsity 0, of the
    first grid method) are the baseline of every method of that model and task; each method's
    curve starts at that dense point."""
    keys = ["model", "task", "method", "sparsity"]
    summary = (runs.groupby(keys, as_index=False)
               .agg(metric=("metric", "first"), value=("value", "mean"),
                    value_std=("value", "std"), seeds=("seed", "nunique")))
    summary["value_std"] = summary["value_std"].fillna(0.0)
    dense = summary[summary["sparsity"] == 0].groupby(["model", "task"])
    dense = dense.agg(value=("value", "mean"), value_std=("value_std", "max"),
                      seeds=("seeds", "max"), metric=("metric", "first"))
    index = pd.MultiIndex.from_frame(summary[["model", "task"]])
    if not index.isin(dense.index).all():
        lacking = summary.loc[~index.isin(dense.index), ["model", "task"]].iloc[0]
        raise ArtefactError(f"no dense (sparsity 0) run for {tuple(lacking)}: the grid in "
                            f"params.yaml prune.sparsities must contain 0")
    has_dense = set(summary.loc[summary["sparsity"] == 0, ["model", "task", "method"]]
                    .itertuples(index=False, name=None))
    starts = [{"model": model, "task": task, "method": method, "sparsity": 0.0,
               **dense.loc[(model, task)].to_dict()}
              for model, task, method in summary[["model", "task", "method"]].drop_duplicates()
              .itertuples(index=False, name=None) if (model, task, method) not in has_dense]
    summary = pd.concat([summary, pd.DataFrame(starts, columns=summary.columns)],
                        ignore_index=True).sort_values(keys, ignore_index=True)
    summary["dense_value"] = dense["value"].reindex(
        pd.MultiIndex.from_frame(summary[["model", "task"]])).to_numpy()
    summary["drop"] = summary["dense_value"] - summary["value"]
    return summary


def essential_sparsity(drops: pd.DataFrame, epsilon: float) -> pd.DataFrame:
    """Per (model, task, method on a sparsity grid): the largest sparsity within epsilon of dense.
    N:M patterns are one sparsity each, so they have none."""
    rows = []
    on_grid = drops[drops["method"].map(lambda m: parse_nm(m) is None)]
    for (model, task, method), group in on_grid.groupby(["model", "task", "method"]):
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


def curve_tables(evaluate: dict, metric_files: list[str | Path],
                 runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The one way from runs (`runs_table` of `metric_files`) to a figure's drop table, its
    essential sparsity table, LTH minus OMP and the N:M drops (empty where no run is of those
    methods), each number with its interval (`bootstrap`), by params.yaml's `evaluate`."""
    resampling = evaluate["bootstrap"]
    level = resampling["level"]
    resampled = bootstrap.resampled_drops(runs, bootstrap.scores_of(metric_files),
                                          resampling["resamples"], resampling["seed"])
    drops = bootstrap.drop_intervals(drop_table(runs), resampled, level)
    essential = bootstrap.essential_intervals(
        essential_sparsity(drops, evaluate["epsilon"]), drops, resampled, evaluate["epsilon"],
        level)
    return {"drop_vs_sparsity": drops, "essential_sparsity": essential,
            "lth_vs_omp": lth_vs_omp(drops, resampled, level), "nm_patterns": nm_drops(drops)}


def lth_vs_omp(drops: pd.DataFrame, resampled: dict[tuple, np.ndarray],
               level: float) -> pd.DataFrame:
    """Figure 9's table: LTH minus each OMP method at every sparsity both were fine-tuned at,
    with the paired interval of that difference (both runs scored on the same examples)."""
    lth = drops[(drops["method"] == LTH) & (drops["sparsity"] > 0)]
    keys = ["model", "task", "sparsity"]
    frames = []
    for method in sorted(m for m in drops["method"].unique() if m.startswith("omp-")):
        omp = drops[drops["method"] == method]
        both = lth.merge(omp, on=keys, suffixes=("_lth", "_omp"))
        ends = [bootstrap.interval(resampled[(r.model, r.task, method, r.sparsity)]
                                   - resampled[(r.model, r.task, LTH, r.sparsity)], level)
                for r in both.itertuples()]
        frames.append(pd.DataFrame({
            "model": both["model"], "task": both["task"], "sparsity": both["sparsity"],
            "omp_method": method, "metric": both["metric_lth"], "lth_value": both["value_lth"],
            "omp_value": both["value_omp"], "difference": both["value_lth"] - both["value_omp"],
            "difference_low": [low for low, _ in ends],
            "difference_high": [high for _, high in ends],
            "lth_std": both["value_std_lth"], "omp_std": both["value_std_omp"]}))
    columns = ["model", "task", "sparsity", "omp_method", "metric", "lth_value", "omp_value",
               "difference", "difference_low", "difference_high", "lth_std", "omp_std"]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns))[
        columns]


def nm_drops(drops: pd.DataFrame) -> pd.DataFrame:
    """Figure 5's table: the drop of every N:M pattern with its interval, beside unstructured
    OMP at the same sparsity where the grid has it."""
    rows = []
    for row in drops.itertuples():
        nm = parse_nm(row.method)
        if nm is None or row.sparsity == 0:
            continue
        same = drops[(drops["model"] == row.model) & (drops["task"] == row.task)
                     & (drops["method"] == "omp-global") & (drops["sparsity"] == row.sparsity)]
        rows.append({"model": row.model, "task": row.task, "pattern": f"{nm[0]}:{nm[1]}",
                     "n": nm[0], "m": nm[1], "sparsity": row.sparsity, "metric": row.metric,
                     "value": row.value, "value_std": row.value_std,
                     "dense_value": row.dense_value, "drop": row.drop,
                     "drop_low": row.drop_low, "drop_high": row.drop_high,
                     "omp_global_drop": float(same["drop"].iloc[0]) if len(same) else None})
    columns = ["model", "task", "pattern", "n", "m", "sparsity", "metric", "value", "value_std",
               "dense_value", "drop", "drop_low", "drop_high", "omp_global_drop"]
    return pd.DataFrame(rows, columns=columns).sort_values(["model", "task", "m", "n"],
                                                         ignore_index=True)


def essential_metrics(table: pd.DataFrame) -> dict:
    """Nested {model: {task: {method: {essential_sparsity, low, high}}}} for `dvc metrics
    show`: each essential sparsity with its interval."""
    out: dict = {}
    for row in table.itertuples():
        out.setdefault(row.model, {}).setdefault(row.task, {})[row.method] = {
            "essential_sparsity": row.essential_sparsity, "low": row.essential_low,
            "high": row.essential_high}
    return out


def pruned_by_component(report: dict) -> pd.DataFrame:
    """Figure 1's table: pruned weights per component and layer from a mask's sparsity report."""
    frame = pd.DataFrame(report["matrices"])
    return (frame.groupby(["component", "layer"], as_index=False)[["weights", "pruned"]].sum()
            .assign(sparsity=lambda f: f["pruned"] / f["weights"],
                    share_of_pruned=lambda f: f["pruned"] / f["pruned"].sum()))
