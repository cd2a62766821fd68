"""The pretrain-subset stages (Section 5, Figure 8): corpus and vocabulary, and one pre-training
run per data fraction (its tables are `pretrain_tables`, so that a change to how tables are drawn
up reruns no pre-training).

Every subset is pre-trained with the same settings, seed and number of steps; the subsets are
nested random selections of one packed corpus, tokenized with one vocabulary learnt from the whole
training text.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch

from ..catalog.sources import SourceError
from ..data.corpus import corpus_documents, split_documents
from ..records.io import atomic_dir, read_tensors, write_json, write_tensors
from ..training import pretrain
from ..training.device import job_device

SEQUENCES = "sequences.safetensors"


def build_data(settings: dict, out_dir: str | Path) -> dict:
    """Clean and split the corpus, learn the vocabulary on all training text, pack sequences:
    the training set (the 100% subset) and the held-out set the loss curves are measured on.
    `settings`: the rule's (`pretrain_data_settings`)."""
    s = settings["pretrain"]
    documents = corpus_documents(s["corpus"], s["min_chars"], settings["corpora"])
    split = split_documents(documents, s["heldout_fraction"], s["seed"])
    tokenizer = pretrain.train_tokenizer(split["train"], s["vocab_size"], s["max_length"])
    train = pretrain.pack_sequences(tokenizer, split["train"], s["max_length"], s["sequences"])
    heldout = pretrain.pack_sequences(tokenizer, split["heldout"], s["max_length"],
                                      s["heldout_sequences"])
    for name, packed, wanted, key in (("training", train, s["sequences"], "sequences"),
                                      ("held-out", heldout, s["heldout_sequences"],
                                       "heldout_sequences")):
        if wanted is not None and len(packed) < wanted:
            raise SourceError(f"the corpus's {name} text packs into {len(packed)} sequences of "
                              f"{s['max_length']} tokens, fewer than pretrain.{key} = {wanted}; "
                              f"lower it in params.yaml or add corpora to pretrain.corpus")
    meta = {"corpus": s["corpus"], "documents": len(documents),
            "train_documents": len(split["train"]), "heldout_documents": len(split["heldout"]),
            "vocab_size": len(tokenizer), "max_length": s["max_length"],
            "train_sequences": len(train), "heldout_sequences": len(heldout),
            "train_tokens": int(train.numel())}
    with atomic_dir(out_dir) as tmp:
        tokenizer.save_pretrained(str(tmp / "tokenizer"))
        write_tensors(tmp / SEQUENCES, {"train": train, "heldout": heldout})
        write_json(tmp / "meta.json", meta)
    return meta


def _fingerprint(settings: dict, sequences: torch.Tensor) -> str:
    """What a resumed run must share with the interrupted one: settings, fraction and data."""
    digest = hashlib.sha256(json.dumps([settings["run"], settings["fraction"]],
                                       sort_keys=True).encode())
    digest.update(sequences.numpy().tobytes())
    return digest.hexdigest()


def pretrain_run(settings: dict, device: str, model: str, data_dir: str | Path,
                 out_dir: str | Path) -> dict:
    """Pre-train the model of one data fraction with the rule's `settings`
    (`pretrain_run_settings`); checkpoints under out_dir/step-K. Work happens in out_dir.partial,
    renamed into place when the run completes; rerunning after a kill resumes there from the last
    checkpoint."""
    from transformers import AutoTokenizer

    fraction, run = settings["fraction"], settings["run"]
    data = read_tensors(Path(data_dir) / SEQUENCES)
    tokenizer = AutoTokenizer.from_pretrained(str(Path(data_dir) / "tokenizer"))
    subset = pretrain.nested_subset(len(data["train"]), fraction, run["seed"])
    sequences, heldout = data["train"][subset].long(), data["heldout"].long()
    out_dir = Path(out_dir)
    work = out_dir.with_name(out_dir.name + ".partial")
    start = time.perf_counter()
    device = job_device(device)
    history = pretrain.run(sequences, heldout, tokenizer, run, work,
                           _fingerprint(settings, sequences), desc=model, device=device)
    return pretrain.finish_run(work, out_dir, {"model": model, "fraction": fraction,
                                               "sequences": len(sequences)},
                               history, run, len(sequences), device, start)
