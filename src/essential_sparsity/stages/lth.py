"""One lottery-ticket round: prune a fine-tuned run further, inside its mask."""

from __future__ import annotations

from pathlib import Path

from ..config import levels
from ..pruning import masks
from ..records.io import ArtefactError, read_json, read_metadata_json, read_tensors


def lth_round(settings: dict, model: str, task: str, round_: int, checkpoint: str | Path,
              previous: str | Path, out_path: str | Path) -> dict:
    """One LTH round: prune the fine-tuned weights of the previous round's run to this round's
    sparsity (the rule's `settings`: `lth_round_settings`), inside the previous round's mask
    (round 1: the dense run and its all-kept mask). The next fine-tuning starts from the
    pre-trained weights under this mask: that is the rewind."""
    sparsity = settings["sparsity"]
    state = read_tensors(checkpoint)
    model_type = read_metadata_json(checkpoint, "config")["model_type"]
    mask = masks.load_mask(previous)
    weights = {name: masks.checkpoint_weight(state, name, checkpoint, model_type)
               for name in mask}
    leaked = sum(int((weights[name][~keep] != 0).sum()) for name, keep in mask.items())
    if leaked:
        raise ArtefactError(f"{checkpoint}: {leaked} weights pruned by {previous} are not zero; "
                            f"the checkpoint was not fine-tuned under that mask: rebuild it")
    new = masks.lth_prune(weights, mask, sparsity)
    info = {"model": model, "method": levels.LTH, "task": task, "round": round_,
            "target_sparsity": sparsity, "rate": settings["rate"],
            "seed": settings["seed"], "fine_tuned": str(checkpoint),
            "previous": str(previous), "scope": settings["scope"],
            "model_type": model_type, "source": masks.mask_info(previous)["source"]}
    masks.save_mask(out_path, new, info)
    return read_json(Path(out_path).with_suffix(".json"))
