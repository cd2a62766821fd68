"""Fine-tuning runs' metrics.json files written directly, for the table builders' tests."""

from __future__ import annotations

import json


def write_runs(directory, task: str, values: dict[float, float],
               model: str = "minilm-l6") -> list[str]:
    """metrics.json of one model's OMP runs on a task, one per sparsity."""
    paths = []
    for sparsity, value in values.items():
        path = directory / model / task / f"{sparsity:g}" / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({
            "model": model, "task": task, "method": "omp-global", "sparsity": sparsity,
            "seed": 0, "metric": "accuracy", "value": value, "validation_value": value,
            "test_loss": 1.0, "test_examples": 1000, "steps": 32, "wall_time_s": 1.0,
            "scope_sparsity": sparsity}))
        paths.append(str(path))
    return paths
