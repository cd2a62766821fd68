"""One-shot pruning of a pre-trained model: one mask, saved with its sparsity report."""

from __future__ import annotations

from pathlib import Path

from ..catalog import sources
from ..config import levels
from ..config.params import ParamsError, format_sparsity
from ..pruning import masks
from ..pruning.scope import scope_weights
from ..records.io import read_json


def prune(settings: dict, model: sources.Model, method: str, sparsity: float,
          out_path: str | Path) -> dict:
    """Compute one mask on the pre-trained weights (a grid method at `sparsity`, or an N:M
    pattern, whose sparsity is 1 - N/M) with the rule's `settings` (`prune_settings`) and save
    it with its sparsity report."""
    encoder = sources.load_encoder(model)
    weights = scope_weights(encoder, settings["scope"])
    nm = levels.parse_nm(method)
    if nm:
        if format_sparsity(sparsity) != format_sparsity(levels.nm_sparsity(*nm)):
            raise ParamsError(f"{method} is {levels.nm_sparsity(*nm):g} sparse, not {sparsity:g}")
        try:
            mask = masks.nm_mask(weights, *nm)
        except ValueError as exc:
            raise ParamsError(f"prune.nm_patterns: {exc}; remove the pattern from params.yaml "
                              f"for {model.name}") from exc
    else:
        (mask,) = masks.grid_masks(weights, [sparsity], method, settings["random_seed"]).values()
    info = {"model": model.name, "method": method, "target_sparsity": sparsity,
            "scope": settings["scope"], "model_type": encoder.config.model_type,
            "source": model.source}
    if method == "random":
        info["seed"] = settings["random_seed"]
    masks.save_mask(out_path, mask, info)
    return read_json(Path(out_path).with_suffix(".json"))
