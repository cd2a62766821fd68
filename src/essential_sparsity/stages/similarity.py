"""Figure 10's table: how alike LTH masks are, to OMP's and to each other."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from ..catalog import sources
from ..pruning import masks
from ..pruning.scope import scope_weights
from ..records.io import write_csv


def mask_similarity(settings: dict, lth_masks: list[str | Path], out_csv: str | Path) -> None:
    """Figure 10's table: cosine similarity of every LTH mask with the OMP mask of the same model
    and sparsity (computed here from the pre-trained weights, since LTH levels need not lie on the
    grid), and between the LTH masks of two tasks. A random mask pair at sparsity s would give
    1 - s on average: the `random_expectation` column. `settings`:
    `config.params.similarity_settings`."""
    found: dict[tuple[str, float], dict[str, Path]] = {}
    for path in map(Path, lth_masks):
        info = masks.mask_info(path)
        found.setdefault((info["model"], info["target_sparsity"]), {})[info["task"]] = path
    rows = []
    omp_methods = settings["methods"]
    for model in sorted({model for model, _ in found}):
        at = sorted(s for m, s in found if m == model)
        encoder = sources.load_encoder(sources.Model(model, settings["locations"].get(model)))
        weights = scope_weights(encoder, settings["scope"])
        omp = {method: masks.grid_masks(weights, at, method) for method in omp_methods}
        for sparsity in at:
            lth = {task: masks.load_mask(path) for task, path in found[(model, sparsity)].items()}
            base = {"model": model, "sparsity": sparsity, "random_expectation": 1 - sparsity}
            for (task, mask), method in itertools.product(sorted(lth.items()), omp_methods):
                rows.append({**base, "pair": "lth-vs-omp", "task": task, "other": method,
                             "cosine": masks.cosine_similarity(mask, omp[method][sparsity])})
            for a, b in itertools.combinations(sorted(lth), 2):
                rows.append({**base, "pair": "lth-vs-lth", "task": a, "other": b,
                             "cosine": masks.cosine_similarity(lth[a], lth[b])})
    columns = ["model", "sparsity", "pair", "task", "other", "cosine", "random_expectation"]
    write_csv(out_csv, pd.DataFrame(rows, columns=columns))
