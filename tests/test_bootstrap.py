"""The paired bootstrap of drops and essential sparsity, on cases whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from essential_sparsity.evaluation import bootstrap, curves
from essential_sparsity.records.io import ArtefactError


def curve(points: dict[float, dict[int, np.ndarray]]) -> tuple[pd.DataFrame, dict]:
    """Runs of one model, task and method: sparsity -> seed -> per-example scores."""
    rows, scores = [], {}
    for sparsity, seeds in points.items():
        for seed, values in seeds.items():
            key = ("minilm-l6", "bbc-news", "omp-global", sparsity, seed)
            rows.append(dict(zip(bootstrap.KEYS, key, strict=True), metric="accuracy",
                             value=float(values.mean())))
            scores[key] = values
    return pd.DataFrame(rows), scores


def intervals(points: dict, epsilon: float = 1.0, resamples: int = 1000):
    runs, scores = curve(points)
    resampled = bootstrap.resampled_drops(runs, scores, resamples, seed=0)
    drops = curves.drop_table(runs)
    essential = curves.essential_sparsity(drops, epsilon)
    return (resampled, bootstrap.drop_intervals(drops, resampled, 0.9).set_index("sparsity"),
            bootstrap.essential_intervals(essential, drops, resampled, epsilon, 0.9).iloc[0])


def examples(n: int = 500, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(20, 80, n)


def test_identical_runs_drop_by_exactly_zero_in_every_resample():
    dense = examples()
    resampled, drops, essential = intervals({0.0: {0: dense}, 0.5: {0: dense.copy()}})
    assert (resampled[("minilm-l6", "bbc-news", "omp-global", 0.5)] == 0).all()
    assert drops.loc[0.5, ["drop_low", "drop_high"]].tolist() == [0.0, 0.0]
    assert (essential["essential_sparsity"], essential["essential_low"],
            essential["essential_high"]) == (0.5, 0.5, 0.5)


def test_a_run_ten_points_worse_on_every_example_drops_by_ten_in_every_resample():
    dense = examples()
    _, drops, essential = intervals({0.0: {0: dense}, 0.5: {0: dense - 10}})
    assert drops.loc[0.5, "drop"] == pytest.approx(10)
    assert drops.loc[0.5, "drop_low"] == pytest.approx(10)
    assert drops.loc[0.5, "drop_high"] == pytest.approx(10)
    assert (essential["essential_low"], essential["essential_high"]) == (0.0, 0.0)


def test_two_seeds_are_resampled_before_the_examples():
    """Seed 0's pruned run equals its dense run, seed 1's is 4 points worse on every example:
    drawing the seeds with replacement gives drops of 0, 2 and 4, a quarter, a half and a
    quarter of the time, so the central 90% spans 0 to 4."""
    dense = {0: examples(seed=1), 1: examples(seed=2)}
    pruned = {0: dense[0].copy(), 1: dense[1] - 4}
    resampled, drops, _ = intervals({0.0: dense, 0.5: pruned}, resamples=4000)
    values = resampled[("minilm-l6", "bbc-news", "omp-global", 0.5)]
    assert np.allclose(np.sort(np.unique(values.round(9))), [0, 2, 4])
    shares = [np.isclose(values, v).mean() for v in (0, 2, 4)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.03)
    assert drops.loc[0.5, "drop"] == pytest.approx(2)
    assert drops.loc[0.5, "drop_low"] == pytest.approx(0, abs=1e-9)
    assert drops.loc[0.5, "drop_high"] == pytest.approx(4)


def test_a_point_with_fewer_seeds_than_dense_draws_its_own_and_keeps_the_dense_seed_noise():
    """Only the dense runs repeat: seed 1's dense run is 4 points below seed 0's on every
    example, and the one pruned run (seed 0) 10 below seed 0's. The dense mean over the drawn
    seeds is 0, 2 or 4 below seed 0's, so the drop is 10, 8 or 6, a quarter, a half and a quarter
    of the time; the point value compares the means: 8."""
    base = examples(seed=1)
    dense = {0: base, 1: base - 4}
    resampled, drops, _ = intervals({0.0: dense, 0.5: {0: base - 10}}, resamples=4000)
    values = resampled[("minilm-l6", "bbc-news", "omp-global", 0.5)]
    assert np.allclose(np.sort(np.unique(values.round(9))), [6, 8, 10])
    shares = [np.isclose(values, v).mean() for v in (6, 8, 10)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.03)
    assert drops.loc[0.5, "seeds"] == 1
    assert drops.loc[0.5, ["drop", "drop_low", "drop_high"]].tolist() == pytest.approx([8, 6, 10])


def test_points_with_the_dense_seeds_pair_seed_with_seed():
    """Seed 1's runs are 4 points below seed 0's at both sparsities: paired, the drop at 0.5 is
    the same 3 points whichever seeds a resample draws."""
    base = examples(seed=1)
    runs = {0.0: {0: base, 1: base - 4}, 0.5: {0: base - 3, 1: base - 7}}
    resampled, _, _ = intervals(runs)
    assert np.allclose(resampled[("minilm-l6", "bbc-news", "omp-global", 0.5)], 3)


def test_a_drop_near_epsilon_gives_an_essential_interval_across_the_grid():
    """At 0.2 the pruned run gets 1% of 1000 right-or-wrong examples fewer right (1 point, at
    epsilon): resampling puts that drop on either side, so the interval spans 0.2 and 0; at 0.4
    it is 10 points and never within."""
    dense = (np.arange(1000) < 700) * 100.0
    near = dense.copy()
    near[:10] = 0  # 10 of the right answers wrong: 1 point
    far = dense.copy()
    far[:100] = 0
    _, drops, essential = intervals({0.0: {0: dense}, 0.2: {0: near}, 0.4: {0: far}})
    assert essential["essential_sparsity"] == 0.2
    assert (essential["essential_low"], essential["essential_high"]) == (0.0, 0.2)
    assert drops.loc[0.2, "drop_low"] < 1 < drops.loc[0.2, "drop_high"]
    assert drops.loc[0.4, "drop_low"] > 1


def test_the_same_seed_gives_the_same_intervals_bit_for_bit():
    dense = examples()
    points = {0.0: {0: dense}, 0.5: {0: dense - examples(seed=3) / 10}}
    first, _, _ = intervals(points)
    second, _, _ = intervals(points)
    assert all(np.array_equal(first[k], second[k]) for k in first)


def test_runs_on_different_test_splits_are_refused():
    runs, scores = curve({0.0: {0: examples(500)}, 0.5: {0: examples(400)}})
    with pytest.raises(ArtefactError, match="400 test examples, the dense runs' 500"):
        bootstrap.resampled_drops(runs, scores, 100, seed=0)
