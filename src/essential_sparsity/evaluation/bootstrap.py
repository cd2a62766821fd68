"""How sure each drop and each essential sparsity is: a paired bootstrap over the test examples.

Every run of one model and task is scored on the same test examples in the same order (its
`predictions.csv`), so a pruned run and the dense one can be compared example by example. One
resample draws the seeds with replacement (where a curve has several), then the test examples with
replacement, the same examples for every point of the curve: the drop of each point is the dense
mean minus the pruned mean over the drawn (seed, example) pairs. A point run with the dense runs'
seeds draws the same seeds as they do (each seed's pruned run beside its dense run); one run with
other seeds (fewer, where only some methods repeat) draws its own, so its interval holds only the
seed noise its runs show. An interval is the central `level` of the resampled drops. The essential
sparsity of each resample is read off its resampled drops as the point value is off the measured
ones; its interval is the range of grid sparsities it falls on in the central `level` of the
resamples.

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


def read_scores(metrics_path: str | Path) -> np.ndarray:
    """A run's per-example scores (points), from the predictions.csv beside its metrics.json."""
    predictions = Path(metrics_path).with_name("predictions.csv")
    try:
        column = pd.read_csv(predictions)["score"]
    except (OSError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ArtefactError(f"{predictions}: no per-example scores ({exc!r}); rerun the job "
                            f"that wrote it") from exc
    return column.to_numpy(dtype=float)


def scores_of(metric_files: list[str | Path]) -> Scores:
    """Each fine-tuning run's per-example scores, by its KEYS."""
    return {tuple(read_json(path)[k] for k in KEYS): read_scores(path) for path in metric_files}


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
        seed_sets = {point: tuple(sorted(group["seed"].unique()))
                     for point, group in curve.groupby(["method", "sparsity"])}
        dense_runs = curve[curve["sparsity"] == 0]
        dense_seeds = tuple(sorted(dense_runs["seed"].unique()))
        dense = np.mean([_by_seed(scores, point, dense_seeds)
                         for _, point in dense_runs.groupby("method")], axis=0)
        rng = _stream(seed, model, task)
        seed_draws = {dense_seeds: _seed_draws(rng, len(dense_seeds), resamples)}
        examples = rng.integers(0, dense.shape[1], (resamples, dense.shape[1]))[:, None, :]
        for seeds in sorted(set(seed_sets.values()) - {dense_seeds}):
            seed_draws[seeds] = _seed_draws(rng, len(seeds), resamples)
        dense_means = _means(dense, (seed_draws[dense_seeds], examples))
        for (method, sparsity), point in curve.groupby(["method", "sparsity"]):
            seeds = seed_sets[(method, sparsity)]
            pruned = _by_seed(scores, point, list(seeds))
            if pruned.shape[1] != dense.shape[1]:
                raise ArtefactError(f"{model} on {task}, {method} at {sparsity:g}: "
                                    f"{pruned.shape[1]} test examples, the dense runs' "
                                    f"{dense.shape[1]}; rerun it on the same test split")
            drops[(model, task, method, sparsity)] = (
                dense_means - _means(pruned, (seed_draws[seeds], examples)))
    return drops


def _seed_draws(rng: np.random.Generator, seeds: int, resamples: int) -> np.ndarray:
    """Which of a point's `seeds` runs each resample draws, with replacement: [resample, seed, 1].
    Points run with the dense runs' seeds share their draw, so seed pairs with seed."""
    return rng.integers(0, seeds, (resamples, seeds))[:, :, None]


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
