"""The tidy tables the figures and claims read, built from the runs' JSON files.

Nothing here touches a tensor, so these jobs start without importing torch: a table, claims or
mask-table job costs its own work, not the deep-learning stack's start-up."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from ..catalog.tasks import GENERATED_ARITHMETIC_TASKS
from ..config.params import ParamsError
from ..data import arithmetic
from ..records.io import ArtefactError, atomic_path, read_json, write_csv, write_json
from . import claims, curves


def finetune_tables(params: dict, metric_files: list[str], out_dir: str | Path,
                    metrics_json: str | Path) -> pd.DataFrame:
    """One row per run, drop vs sparsity, essential sparsity, LTH minus OMP, N:M drops."""
    out_dir = Path(out_dir)
    runs = curves.runs_table(metric_files)
    tables = {"finetune_runs": runs, **curves.curve_tables(params, metric_files, runs)}
    for name, frame in tables.items():
        write_csv(out_dir / f"{name}.csv", frame)
    write_json(metrics_json, curves.essential_metrics(tables["essential_sparsity"]))
    return tables["essential_sparsity"]


def arithmetic_tables(params: dict, metric_files: list[str],
                      out: dict[str, str | Path]) -> dict[str, pd.DataFrame]:
    """Figure 4's tables: every arithmetic run, drop vs sparsity and essential sparsity, each row
    with the paper's dataset the task is or, when generated, stands in for."""
    runs = curves.runs_of(metric_files, "task", params["arithmetic"]["tasks"], "arithmetic")
    curve = curves.curve_tables(params, metric_files, runs)
    tables = {"runs": runs, "drop_vs_sparsity": curve["drop_vs_sparsity"],
              "essential_sparsity": curve["essential_sparsity"]}
    for name, frame in tables.items():
        frame.insert(2, "dataset", frame["task"].map(arithmetic.DATASETS))
        frame.insert(3, "generated", frame["task"].isin(GENERATED_ARITHMETIC_TASKS))
        write_csv(out[name], frame)
    return tables


def claims_report(params: dict, claims_file: str | Path, tables_dir: str | Path,
                  out_csv: str | Path, out_md: str | Path) -> pd.DataFrame:
    """The paper's claims against our tables: a tidy table and a markdown page."""
    try:
        listed = yaml.safe_load(Path(claims_file).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ParamsError(f"{claims_file}: cannot read the claims ({exc})") from exc
    if not isinstance(listed, list):
        raise ParamsError(f"{claims_file}: expected a list of claims, got {type(listed).__name__}")
    table = claims.evaluate_claims(listed, tables_dir)
    write_csv(out_csv, table)
    with atomic_path(out_md) as tmp:
        tmp.write_text(claims.claims_markdown(table, params["profile"],
                                            params["evaluate"]["bootstrap"]["level"]))
    return table


def mask_table(report_path: str | Path, out_csv: str | Path) -> None:
    """Figure 1's table: pruned weights per component and layer."""
    write_csv(out_csv, curves.pruned_by_component(read_json(report_path)))


LLM_COLUMNS = ["model", "method", "level", "sparsity", "pattern", "scope_sparsity", "perplexity",
               "heldout_loss", "benchmark", "accuracy", "questions", "chance"]


def zero_shot_table(metric_files: list[str | Path]) -> pd.DataFrame:
    """One row per run, with each metric's change from the model's dense run: accuracy drop in
    points (dense minus pruned) and the perplexity ratio (pruned over dense); MMLU runs add
    their accuracy per category."""
    frame = pd.DataFrame([read_json(path) for path in metric_files])
    categories = sorted(c for c in frame.columns if c.startswith("accuracy_"))
    frame = frame[LLM_COLUMNS + categories]
    dense = frame[frame["sparsity"] == 0].set_index("model")
    missing = sorted(set(frame["model"]) - set(dense.index))
    if missing:
        raise ArtefactError(f"no dense run (sparsity 0) of {missing[0]} among the metrics; "
                            f"build the whole llm target")
    frame["accuracy_drop"] = frame["model"].map(dense["accuracy"]) - frame["accuracy"]
    frame["perplexity_ratio"] = frame["perplexity"] / frame["model"].map(dense["perplexity"])
    return frame.sort_values(["model", "method", "pattern", "sparsity"]).reset_index(drop=True)
