"""The pretrain-subset stages (Section 5, Figure 8): corpus and vocabulary, one pre-training run
per data fraction, and the tables of zero weights, losses and downstream accuracy.

Every subset is pre-trained with the same settings, seed and number of steps; the subsets are
nested random selections of one packed corpus, tokenized with one vocabulary learnt from the whole
training text. Zero weights are counted from the checkpoints on disk, not during training, so a
reviewer can recount them from the versioned artefacts.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import pandas as pd
import torch

from ..catalog.sources import SourceError
from ..config.levels import pretrain_models, pretrain_run_settings
from ..data.corpus import corpus_documents, split_documents
from ..evaluation import curves
from ..pruning.scope import classify
from ..records.io import (
    ArtefactError,
    atomic_dir,
    read_json,
    read_tensors,
    write_csv,
    write_json,
    write_tensors,
)
from ..training import pretrain
from ..training.device import job_device

SEQUENCES = "sequences.safetensors"


def build_data(params: dict, out_dir: str | Path) -> dict:
    """Clean and split the corpus, learn the vocabulary on all training text, pack sequences:
    the training set (the 100% subset) and the held-out set the loss curves are measured on."""
    s = params["pretrain"]
    documents = corpus_documents(s["corpus"], s["min_chars"])
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


def _fingerprint(params: dict, fraction: float, sequences: torch.Tensor) -> str:
    """What a resumed run must share with the interrupted one: settings, fraction and data."""
    same = pretrain_run_settings(params)
    digest = hashlib.sha256(json.dumps([same, fraction], sort_keys=True).encode())
    digest.update(sequences.numpy().tobytes())
    return digest.hexdigest()


def pretrain_run(params: dict, model: str, data_dir: str | Path, out_dir: str | Path) -> dict:
    """Pre-train the model of one data fraction; checkpoints under out_dir/step-K. Work happens
    in out_dir.partial, renamed into place when the run completes; rerunning after a kill
    resumes there from the last checkpoint."""
    from transformers import AutoTokenizer

    settings = params["pretrain"]
    fractions = pretrain_models(params)
    if model not in fractions:
        raise ArtefactError(f"{model} is not one of this profile's pre-training runs "
                            f"({', '.join(fractions)}); check pretrain.fractions")
    fraction = fractions[model]
    data = read_tensors(Path(data_dir) / SEQUENCES)
    tokenizer = AutoTokenizer.from_pretrained(str(Path(data_dir) / "tokenizer"))
    subset = pretrain.nested_subset(len(data["train"]), fraction, settings["seed"])
    sequences, heldout = data["train"][subset].long(), data["heldout"].long()
    out_dir = Path(out_dir)
    work = out_dir.with_name(out_dir.name + ".partial")
    start = time.perf_counter()
    device = job_device(params["resources"]["device"])
    history = pretrain.run(sequences, heldout, tokenizer, settings, work,
                           _fingerprint(params, fraction, sequences), desc=model, device=device)
    return pretrain.finish_run(work, out_dir, {"model": model, "fraction": fraction,
                                               "sequences": len(sequences)},
                               history, settings, len(sequences), device, start)


def _scope_name(name: str) -> tuple[str, int] | None:
    """(component, layer) of a checkpoint tensor, whose names carry the MLM model's prefix."""
    return classify(name, "bert") or classify(name.partition(".")[2], "bert")


def zero_weights(checkpoint: str | Path, scope: list[str], tau: float) -> list[dict]:
    """Exactly-zero and near-zero (|w| <= tau) weights of the scope in one checkpoint, per
    component and in total."""
    counts = {c: [0, 0, 0] for c in scope}
    for name, tensor in read_tensors(Path(checkpoint) / "model.safetensors").items():
        where = _scope_name(name)
        if where and where[0] in scope:
            count = counts[where[0]]
            count[0] += tensor.numel()
            count[1] += int((tensor == 0).sum())
            count[2] += int((tensor.abs() <= tau).sum())
    if not sum(c[0] for c in counts.values()):
        raise ArtefactError(f"{checkpoint}: no weight of the scope {scope}; the checkpoint is "
                            f"not a BERT: rebuild it")
    counts["all"] = [sum(c[i] for c in counts.values()) for i in range(3)]
    return [{"component": component, "weights": n, "zero": zero, "near_zero": near,
             "zero_share": zero / n, "near_zero_share": near / n}
            for component, (n, zero, near) in counts.items() if n]


def _steps(run_dir: Path) -> list[int]:
    steps = sorted(int(m.group(1)) for p in run_dir.glob("step-*")
                   if (m := re.fullmatch(r"step-(\d+)", p.name)))
    if not steps:
        raise ArtefactError(f"{run_dir}: no step-K checkpoints; rebuild it with snakemake "
                            f"{run_dir}")
    return steps


def zero_weight_table(params: dict, run_dirs: list[str | Path]) -> pd.DataFrame:
    """Figure 8 (i): one row per run, checkpoint and component."""
    scope, tau = params["prune"]["scope"], params["pretrain"]["near_zero"]
    rows = []
    for run_dir in map(Path, run_dirs):
        info = read_json(run_dir / "run.json")
        for step in _steps(run_dir):
            for row in zero_weights(pretrain.step_dir(run_dir, step), scope, tau):
                rows.append({"model": info["model"], "fraction": info["fraction"], "step": step,
                             "tau": tau, **row})
    return pd.DataFrame(rows)


def onset_table(zeros: pd.DataFrame) -> pd.DataFrame:
    """Per run, the onset of abrupt sparsification: the checkpoint interval over which the
    near-zero count of the whole scope grows fastest, against the median interval's growth per
    step. A run whose count does not grow overall has no onset (its steepest interval is still
    reported), and the ratio is left empty when the median is not positive."""
    rows = []
    for (model, fraction), run in zeros[zeros["component"] == "all"].groupby(["model",
                                                                              "fraction"]):
        run = run.sort_values("step")
        rate = run["near_zero"].diff() / run["step"].diff()
        steepest = rate.idxmax()
        median = float(rate.iloc[1:].median())
        grew = run["near_zero"].iloc[-1] > run["near_zero"].iloc[0] and rate.loc[steepest] > 0
        rows.append({"model": model, "fraction": fraction,
                     "onset_step": int(run.loc[steepest, "step"]) if grew else None,
                     "steepest_from_step": int(run["step"].shift().loc[steepest]),
                     "steepest_to_step": int(run.loc[steepest, "step"]),
                     "steepest_growth_per_step": float(rate.loc[steepest]),
                     "median_growth_per_step": median,
                     "steepest_over_median": float(rate.loc[steepest]) / median
                     if median > 0 else None,
                     "near_zero_first": int(run["near_zero"].iloc[0]),
                     "near_zero_last": int(run["near_zero"].iloc[-1]),
                     "near_zero_share_last": float(run["near_zero_share"].iloc[-1]),
                     "zero_last": int(run["zero"].iloc[-1])})
    return pd.DataFrame(rows).sort_values("fraction", ascending=False, ignore_index=True)


def loss_table(run_dirs: list[str | Path]) -> pd.DataFrame:
    """The learning curves: training and held-out MLM loss at every checkpoint of every run."""
    rows = []
    for run_dir in map(Path, run_dirs):
        info = read_json(run_dir / "run.json")
        for row in info["history"]:
            rows.append({"model": info["model"], "fraction": info["fraction"],
                         "sequences": info["sequences"], "epochs": info["epochs"],
                         "step": row["step"], "train_loss": row["train_loss"],
                         "heldout_loss": row["heldout_loss"]})
    return pd.DataFrame(rows)


def downstream_table(params: dict, metric_files: list[str | Path]) -> pd.DataFrame:
    """Figure 8 (ii, iii): each subset's fine-tuned accuracy and drop against sparsity, with
    its data fraction; the dense rows are panel (iii)."""
    fractions = pretrain_models(params)
    runs = curves.runs_of(metric_files, "model", list(fractions), "pre-training")
    drops = curves.curve_tables(params, metric_files, runs)["drop_vs_sparsity"]
    examples = runs.groupby(["model", "task"])["test_examples"].min()
    drops["test_examples"] = examples.reindex(
        pd.MultiIndex.from_frame(drops[["model", "task"]])).to_numpy()
    drops.insert(1, "fraction", drops["model"].map(fractions))
    return drops.sort_values(["task", "fraction", "sparsity"], ascending=[True, False, True],
                             ignore_index=True)


def pretrain_tables(params: dict, run_dirs: list[str], metric_files: list[str],
                    out: dict[str, str | Path]) -> dict[str, pd.DataFrame]:
    """Write every table of Figure 8: zero weights, onset, loss curves, downstream."""

    zeros = zero_weight_table(params, run_dirs)
    tables = {"zero_weights": zeros, "onset": onset_table(zeros),
              "losses": loss_table(run_dirs),
              "drop_vs_sparsity": downstream_table(params, metric_files)}
    for name, frame in tables.items():
        write_csv(out[name], frame)
    return tables
