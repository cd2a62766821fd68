"""Figure 8's tables from the pre-training runs and their fine-tuning: zero weights per
checkpoint, the onset of abrupt sparsification, loss curves and downstream drops.

Zero weights are counted from the checkpoints on disk, not during training, so a reviewer can
recount them from the versioned artefacts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..evaluation import curves
from ..pruning.scope import classify
from ..records.io import ArtefactError, read_json, read_tensors, write_csv
from ..training import pretrain


def _scope_name(name: str) -> tuple[str, int] | None:
    """(component, layer) of a checkpoint tensor, whose names carry the MLM model's prefix."""
    return classify(name, "bert") or classify(name.partition(".")[2], "bert")


def zero_weights(checkpoint: str | Path, scope: list[str], tau: float) -> list[dict]:
    """Exactly-zero and near-zero (|w| <= tau) weights of the scope in one checkpoint, per
    component and in total."""
    counts = {c: [0, 0, 0] for c in scope}
    for name, tensor in read_tensors(Path(checkpoint) / "model.safetensors").items():
        where = _scope_name(name)
        if where and where[0] in scope:
            count = counts[where[0]]
            count[0] += tensor.numel()
            count[1] += int((tensor == 0).sum())
            count[2] += int((tensor.abs() <= tau).sum())
    if not sum(c[0] for c in counts.values()):
        raise ArtefactError(f"{checkpoint}: no weight of the scope {scope}; the checkpoint is "
                            f"not a BERT: rebuild it")
    counts["all"] = [sum(c[i] for c in counts.values()) for i in range(3)]
    return [{"component": component, "weights": n, "zero": zero, "near_zero": near,
             "zero_share": zero / n, "near_zero_share": near / n}
            for component, (n, zero, near) in counts.items() if n]


def _steps(run_dir: Path) -> list[int]:
    steps = sorted(int(m.group(1)) for p in run_dir.glob("step-*")
                   if (m := re.fullmatch(r"step-(\d+)", p.name)))
    if not steps:
        raise ArtefactError(f"{run_dir}: no step-K checkpoints; rebuild it with snakemake "
                            f"{run_dir}")
    return steps


def zero_weight_table(settings: dict, run_dirs: list[str | Path]) -> pd.DataFrame:
    """Figure 8 (i): one row per run, checkpoint and component."""
    scope, tau = settings["scope"], settings["near_zero"]
    rows = []
    for run_dir in map(Path, run_dirs):
        info = read_json(run_dir / "run.json")
        for step in _steps(run_dir):
            for row in zero_weights(pretrain.step_dir(run_dir, step), scope, tau):
                rows.append({"model": info["model"], "fraction": info["fraction"], "step": step,
                             "tau": tau, **row})
    return pd.DataFrame(rows)


def onset_table(zeros: pd.DataFrame) -> pd.DataFrame:
    """Per run, the onset of abrupt sparsification: the checkpoint interval over which the
    near-zero count of the whole scope grows fastest, against the median interval's growth per
    step. A run whose count does not grow overall has no onset (its steepest interval is still
    reported), and the ratio is left empty when the median is not positive."""
    rows = []
    for (model, fraction), run in zeros[zeros["component"] == "all"].groupby(["model",
                                                                              "fraction"]):
        run = run.sort_values("step")
        rate = run["near_zero"].diff() / run["step"].diff()
        steepest = rate.idxmax()
        median = float(rate.iloc[1:].median())
        grew = run["near_zero"].iloc[-1] > run["near_zero"].iloc[0] and rate.loc[steepest] > 0
        rows.append({"model": model, "fraction": fraction,
                     "onset_step": int(run.loc[steepest, "step"]) if grew else None,
                     "steepest_from_step": int(run["step"].shift().loc[steepest]),
                     "steepest_to_step": int(run.loc[steepest, "step"]),
                     "steepest_growth_per_step": float(rate.loc[steepest]),
                     "median_growth_per_step": median,
                     "steepest_over_median": float(rate.loc[steepest]) / median
                     if median > 0 else None,
                     "near_zero_first": int(run["near_zero"].iloc[0]),
                     "near_zero_last": int(run["near_zero"].iloc[-1]),
                     "near_zero_share_last": float(run["near_zero_share"].iloc[-1]),
                     "zero_last": int(run["zero"].iloc[-1])})
    return pd.DataFrame(rows).sort_values("fraction", ascending=False, ignore_index=True)


def loss_table(run_dirs: list[str | Path]) -> pd.DataFrame:
    """The learning curves: training and held-out MLM loss at every checkpoint of every run."""
    rows = []
    for run_dir in map(Path, run_dirs):
        info = read_json(run_dir / "run.json")
        for row in info["history"]:
            rows.append({"model": info["model"], "fraction": info["fraction"],
                         "sequences": info["sequences"], "epochs": info["epochs"],
                         "step": row["step"], "train_loss": row["train_loss"],
                         "heldout_loss": row["heldout_loss"]})
    return pd.DataFrame(rows)


def downstream_table(settings: dict, metric_files: list[str | Path]) -> pd.DataFrame:
    """Figure 8 (ii, iii): each subset's fine-tuned accuracy and drop against sparsity, with
    its data fraction; the dense rows are panel (iii)."""
    fractions = settings["fractions"]
    runs = curves.runs_of(metric_files, "model", list(fractions), "pre-training")
    drops = curves.curve_tables(settings["evaluate"], metric_files, runs)["drop_vs_sparsity"]
    examples = runs.groupby(["model", "task"])["test_examples"].min()
    drops["test_examples"] = examples.reindex(
        pd.MultiIndex.from_frame(drops[["model", "task"]])).to_numpy()
    drops.insert(1, "fraction", drops["model"].map(fractions))
    return drops.sort_values(["task", "fraction", "sparsity"], ascending=[True, False, True],
                             ignore_index=True)


def pretrain_tables(settings: dict, run_dirs: list[str], metric_files: list[str],
                    out: dict[str, str | Path]) -> dict[str, pd.DataFrame]:
    """Write every table of Figure 8: zero weights, onset, loss curves, downstream, by
    `config.levels.pretrain_tables_settings`."""
    zeros = zero_weight_table(settings, run_dirs)
    tables = {"zero_weights": zeros, "onset": onset_table(zeros),
              "losses": loss_table(run_dirs),
              "drop_vs_sparsity": downstream_table(settings, metric_files)}
    for name, frame in tables.items():
        write_csv(out[name], frame)
    return tables
