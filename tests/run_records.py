"""Fine-tuning runs' metrics.json and predictions.csv files written directly, for the table
builders' tests."""

from __future__ import annotations

import json

EXAMPLES = 1000


def write_runs(directory, task: str, values: dict[float, float],
               model: str = "minilm-l6") -> list[str]:
    """metrics.json of one model's OMP runs on a task, one per sparsity, each with its
    predictions: the first value x 10 of its 1000 test examples right, the rest wrong."""
    paths = []
    for sparsity, value in values.items():
        path = directory / model / task / f"{sparsity:g}" / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({
            "model": model, "task": task, "method": "omp-global", "sparsity": sparsity,
            "seed": 0, "metric": "accuracy", "value": value, "validation_value": value,
            "test_loss": 1.0, "test_examples": EXAMPLES, "steps": 32, "wall_time_s": 1.0,
            "scope_sparsity": sparsity}))
        right = round(value * EXAMPLES / 100)
        path.with_name("predictions.csv").write_text("example,score\n" + "".join(
            f"{i},{100 if i < right else 0}\n" for i in range(EXAMPLES)))
        paths.append(str(path))
    return paths
