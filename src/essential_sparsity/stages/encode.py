"""A text task's splits as one model's token ids, shared by every run of the pair."""

from __future__ import annotations

import json
from pathlib import Path

from ..catalog import sources
from ..data import splitting
from ..records.io import write_tensors
from ..training import finetune, heads


def encode_task(settings: dict, model: sources.Model, task: str, data_dir: str | Path,
                out_path: str | Path) -> dict:
    """A text task's splits as the model's token ids, written once per model and task: every
    fine-tuning run of the pair (each sparsity, seed and LTH round) reads them instead of loading
    the tokenizer and tokenizing again. Keys are `split/name`; the metadata names the max_length,
    which the runs check against their own settings (`settings`: `encode_settings`)."""
    max_length = settings["max_length"]
    tokenizer = sources.load_tokenizer(model)
    encode = heads.head(splitting.stored_task(data_dir, task)).encode
    tensors = {f"{split}/{name}": tensor for split in splitting.SPLITS
               for name, tensor in encode(tokenizer, splitting.read_split(data_dir, split),
                                          max_length).items()}
    info = {"model": model.name, "task": task, "max_length": max_length}
    write_tensors(out_path, tensors, metadata={"info": json.dumps(info, sort_keys=True)})
    return {**info, "examples": {split: finetune.rows(splitting.split_tensors(tensors, split))
                                 for split in splitting.SPLITS}}
