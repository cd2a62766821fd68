"""How sure each drop and each essential sparsity is: a paired bootstrap over the test examples.

Every run of one model and task is scored on the same test examples in the same order (its
`predictions.csv`), so a pruned run and the dense one can be compared example by example. One
resample draws the seeds with replacement (where a curve has several), then the test examples
with replacement, the same draw for every point of the curve: the drop of each point is the dense
mean minus the pruned mean over the drawn (seed, example) pairs. An interval is the central
`level` of the resampled drops. The essential sparsity of each resample is read off its resampled
drops as the point value is off the measured ones; its interval is the range of grid sparsities
it falls on in the central `level` of the resamples.

Each model and task draws from its own seeded stream, so a table is the same, bit for bit, on
every rebuild and whatever other curves the build holds.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from ..records.io import ArtefactError, read_json

KEYS = ["model", "task", "method", "sparsity", "seed"]
POINT = KEYS[:4]
Scores = dict[tuple, np.ndarray]  # a run's KEYS -> its test examples' scores, in split order


def scores_of(metric_files: list[str | Path]) -> Scores:
    """Each run's per-example scores, from the predictions.csv beside its metrics.json."""
    scores = {}
    for path in metric_files:
        record = read_json(path)
        predictions = Path(path).with_name("predictions.csv")
        try:
            column = pd.read_csv(predictions)["score"]
        except (OSError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise ArtefactError(f"{predictions}: no per-example scores ({exc!r}); rerun its "
                                f"fine-tuning job") from exc
        scores[tuple(record[k] for k in KEYS)] = column.to_numpy(dtype=float)
    return scores


def _stream(seed: int, model: str, task: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"{model}/{task}".encode())])


def _by_seed(scores: Scores, point: pd.DataFrame, seeds: list) -> np.ndarray:
    """[seed, example] scores of one point's runs, one row per seed in `seeds` order."""
    rows = {row.seed: scores[tuple(getattr(row, k) for k in KEYS)]
            for row in point.itertuples()}
    return np.stack([rows[seed] for seed in seeds])


def _means(matrix: np.ndarray, draws: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Each resample's mean over its drawn (seed, example) pairs of a [seed, example] matrix."""
    return matrix[draws].mean(axis=(1, 2))


def resampled_drops(runs: pd.DataFrame, scores: Scores, resamples: int,
                    seed: int) -> dict[tuple, np.ndarray]:
    """Per (model, task, method, sparsity) of `runs` (`curves.runs_table`): its drop from dense
    in each resample. Dense is the runs at sparsity 0 (`curves.drop_table`'s baseline)."""
    drops: dict[tuple, np.ndarray] = {}
    for (model, task), curve in runs.groupby(["model", "task"]):
        dense_runs = curve[curve["sparsity"] == 0]
        seeds = sorted(dense_runs["seed"].unique())
        dense = np.mean([_by_seed(scores, point, seeds)
                         for _, point in dense_runs.groupby("method")], axis=0)
        rng = _stream(seed, model, task)
        draws = (rng.integers(0, len(seeds), (resamples, len(seeds)))[:, :, None],
                 rng.integers(0, dense.shape[1], (resamples, dense.shape[1]))[:, None, :])
        dense_means = _means(dense, draws)
        for (method, sparsity), point in curve.groupby(["method", "sparsity"]):
            where = f"{model} on {task}, {method} at {sparsity:g}"
            if sorted(point["seed"].unique()) != seeds:
                raise ArtefactError(f"{where}: seeds {sorted(point['seed'].unique())}, the "
                                    f"dense runs' {seeds}; run every seed at every point")
            pruned = _by_seed(scores, point, seeds)
            if pruned.shape != dense.shape:
                raise ArtefactError(f"{where}: {pruned.shape[1]} test examples, the dense "
                                    f"runs' {dense.shape[1]}; rerun it on the same test split")
            drops[(model, task, method, sparsity)] = dense_means - _means(pruned, draws)
    return drops


def interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central `level` of `values`; its ends are values that occurred (grid points, for
    essential sparsities)."""
    tail = (1 - level) / 2
    return (float(np.quantile(values, tail, method="inverted_cdf")),
            float(np.quantile(values, 1 - tail, method="inverted_cdf")))


def _resampled(resampled: dict[tuple, np.ndarray], key: tuple) -> np.ndarray:
    """A point's resampled drops; a curve's start added at the dense point drops by 0."""
    if key in resampled:
        return resampled[key]
    return np.zeros(len(next(iter(resampled.values()))))


def drop_intervals(drops: pd.DataFrame, resampled: dict[tuple, np.ndarray],
                   level: float) -> pd.DataFrame:
    """`drops` (`curves.drop_table`) with each drop's interval: drop_low, drop_high."""
    ends = [interval(_resampled(resampled, key), level)
            for key in drops[POINT].itertuples(index=False, name=None)]
    return drops.assign(drop_low=[low for low, _ in ends], drop_high=[high for _, high in ends])


def essential_intervals(essential: pd.DataFrame, drops: pd.DataFrame,
                        resampled: dict[tuple, np.ndarray], epsilon: float,
                        level: float) -> pd.DataFrame:
    """`essential` (`curves.essential_sparsity`) with each essential sparsity's interval:
    essential_low, essential_high."""
    ends = []
    for row in essential.itertuples():
        curve = drops[(drops["model"] == row.model) & (drops["task"] == row.task)
                      & (drops["method"] == row.method)]
        sparsities = curve["sparsity"].to_numpy()
        within = np.stack([_resampled(resampled, (row.model, row.task, row.method, s))
                           for s in sparsities]) <= epsilon
        per_resample = np.where(within, sparsities[:, None], -np.inf).max(axis=0)
        ends.append(interval(per_resample, level))
    return essential.assign(essential_low=[low for low, _ in ends],
                            essential_high=[high for _, high in ends])
