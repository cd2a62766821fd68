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
from . import bootstrap, claims, curves


def finetune_tables(settings: dict, metric_files: list[str], out_dir: str | Path,
                    metrics_json: str | Path) -> pd.DataFrame:
    """One row per run, drop vs sparsity, essential sparsity, LTH minus OMP, N:M drops, by
    `config.params.tables_settings`."""
    out_dir = Path(out_dir)
    runs = curves.runs_table(metric_files)
    tables = {"finetune_runs": runs,
              **curves.curve_tables(settings["evaluate"], metric_files, runs)}
    for name, frame in tables.items():
        write_csv(out_dir / f"{name}.csv", frame)
    write_json(metrics_json, curves.essential_metrics(tables["essential_sparsity"]))
    return tables["essential_sparsity"]


def arithmetic_tables(settings: dict, metric_files: list[str],
                      out: dict[str, str | Path]) -> dict[str, pd.DataFrame]:
    """Figure 4's tables: every arithmetic run, drop vs sparsity and essential sparsity, each row
    with the paper's dataset the task is or, when generated, stands in for
    (`config.params.arithmetic_tables_settings`)."""
    runs = curves.runs_of(metric_files, "task", settings["tasks"], "arithmetic")
    curve = curves.curve_tables(settings["evaluate"], metric_files, runs)
    tables = {"runs": runs, "drop_vs_sparsity": curve["drop_vs_sparsity"],
              "essential_sparsity": curve["essential_sparsity"]}
    for name, frame in tables.items():
        frame.insert(2, "dataset", frame["task"].map(arithmetic.DATASETS))
        frame.insert(3, "generated", frame["task"].isin(GENERATED_ARITHMETIC_TASKS))
        write_csv(out[name], frame)
    return tables


def claims_report(settings: dict, claims_file: str | Path, tables_dir: str | Path,
                  out_csv: str | Path, out_md: str | Path) -> pd.DataFrame:
    """The paper's claims against our tables: a tidy table and a markdown page naming the
    profile and the intervals' level (`config.params.report_settings`)."""
    try:
        listed = yaml.safe_load(Path(claims_file).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ParamsError(f"{claims_file}: cannot read the claims ({exc})") from exc
    if not isinstance(listed, list):
        raise ParamsError(f"{claims_file}: expected a list of claims, got {type(listed).__name__}")
    table = claims.evaluate_claims(listed, tables_dir)
    write_csv(out_csv, table)
    with atomic_path(out_md) as tmp:
        tmp.write_text(claims.claims_markdown(table, settings["profile"], settings["level"]))
    return table


def mask_table(report_path: str | Path, out_csv: str | Path) -> None:
    """Figure 1's table: pruned weights per component and layer."""
    write_csv(out_csv, curves.pruned_by_component(read_json(report_path)))


LLM_COLUMNS = ["model", "method", "level", "sparsity", "pattern", "scope_sparsity", "perplexity",
               "heldout_loss", "benchmark", "accuracy", "questions", "chance"]


def zero_shot_table(settings: dict, metric_files: list[str | Path]) -> pd.DataFrame:
    """One row per run, with each metric's change from the model's dense run: the accuracy drop
    in points (dense minus pruned) with its interval, a paired bootstrap over the questions (every
    run answered the same ones), and the perplexity ratio (pruned over dense); MMLU runs add their
    accuracy per category and its drop (`category_drop_<name>`). `settings`:
    `config.params.llm_table_settings`."""
    frame = pd.DataFrame([read_json(path) for path in metric_files])
    categories = sorted(c for c in frame.columns if c.startswith("accuracy_"))
    frame = frame[LLM_COLUMNS + categories]
    frame["pattern"] = frame["pattern"].fillna("")
    dense = frame[frame["sparsity"] == 0].set_index("model")
    missing = sorted(set(frame["model"]) - set(dense.index))
    if missing:
        raise ArtefactError(f"no dense run (sparsity 0) of {missing[0]} among the metrics; "
                            f"build the whole llm target")
    frame["accuracy_drop"] = frame["model"].map(dense["accuracy"]) - frame["accuracy"]
    ends = _drop_intervals(settings["bootstrap"], frame, metric_files)
    frame["accuracy_drop_low"] = [low for low, _ in ends]
    frame["accuracy_drop_high"] = [high for _, high in ends]
    frame["perplexity_ratio"] = frame["perplexity"] / frame["model"].map(dense["perplexity"])
    for column in categories:
        frame[f"category_drop_{column.removeprefix('accuracy_')}"] = (
            frame["model"].map(dense[column]) - frame[column])
    return frame.sort_values(["model", "method", "pattern", "sparsity"]).reset_index(drop=True)


def _drop_intervals(resampling: dict, frame: pd.DataFrame,
                    metric_files: list[str | Path]) -> list[tuple[float, float]]:
    """Each run's (row of `frame`, in `metric_files` order) accuracy-drop interval, resampled as
    the fine-tuned curves' are (`bootstrap`): the benchmark is the task, an N:M run a method of
    its own, each run one seed."""
    points = frame.assign(task=frame["benchmark"], seed=0, method=[
        f"{r.method} {r.pattern}" if r.pattern else r.method for r in frame.itertuples()])
    keys = list(points[bootstrap.KEYS].itertuples(index=False, name=None))
    scores = {key: bootstrap.read_scores(path) for key, path in zip(keys, metric_files,
                                                                     strict=True)}
    resampled = bootstrap.resampled_drops(points, scores, resampling["resamples"],
                                          resampling["seed"])
    return [bootstrap.interval(resampled[key[:4]], resampling["level"]) for key in keys]
