"""The causal-LM stages (Figure 11): the text corpus, the dequantized model, one-shot pruning with
zero-shot evaluation, and their table. Like `stages`, each function reads its inputs, calls the
library and writes its outputs atomically; the rules call them through the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import torch

from ..catalog import sources
from ..config import levels
from ..config.params import ParamsError
from ..data import corpus
from ..evaluation import llm_eval
from ..pruning import calibrated, masks
from ..pruning.scope import scope_weights
from ..records.io import (
    ArtefactError,
    atomic_path,
    read_json,
    without_timings,
    write_csv,
    write_json,
)
from ..training.device import device_name, job_device, precision

CORPUS_FILES = ("train", "heldout", "definitions")


def _write_jsonl(path: Path, rows: list) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _read_jsonl(path: Path) -> list:
    try:
        return [json.loads(line) for line in path.read_text().splitlines()]
    except FileNotFoundError as exc:
        raise ArtefactError(f"{path}: missing; rebuild it with snakemake {path}") from exc
    except json.JSONDecodeError as exc:
        raise ArtefactError(f"{path}: corrupt ({exc}); delete it and rebuild") from exc


def build_corpus(settings: dict, out_dir: str | Path) -> dict:
    """Train and held-out documents, and the multiple-choice questions, under out_dir, with the
    rule's `settings` (`corpus_settings`)."""
    section, own = settings["corpus"], settings["corpora"]
    out_dir = Path(out_dir)
    documents = corpus.corpus_documents(section["sources"], section["min_chars"], own)
    split = corpus.split_documents(documents, section["heldout_fraction"], section["seed"])
    questions = corpus.definition_questions(corpus.wordnet_definitions(), section["questions"],
                                            section["choices"], section["seed"])
    for name, rows in (*split.items(), ("definitions", questions)):
        _write_jsonl(out_dir / f"{name}.jsonl", rows)
    meta = {"settings": section, "documents": {k: len(v) for k, v in split.items()},
            "questions": len(questions)}
    if own:  # the entries a catalog corpus was read from
        meta["corpora"] = own
    write_json(out_dir / "meta.json", meta)
    return meta


def _sparsity_of(level: str) -> float:
    nm = levels.parse_nm(level)
    if nm:
        return levels.nm_sparsity(*nm)
    try:
        return float(level)
    except ValueError as exc:
        raise ParamsError(f"LLM level {level!r} is neither a sparsity nor nm-N-M") from exc


def _prune(settings: dict, model, tokenizer, method: str, level: str,
           corpus_dir: Path) -> dict[str, torch.Tensor]:
    """The mask of one method at one level; the model's weights are pruned in place (and, for
    SparseGPT, updated)."""
    nm, sparsity = levels.parse_nm(level), _sparsity_of(level)
    if method in calibrated.CALIBRATED:
        train = _read_jsonl(corpus_dir / "train.jsonl")
        ids = llm_eval.token_windows(tokenizer, train, **settings["calibration"])
        return calibrated.calibrated_prune(model, ids, settings["scope"], method, sparsity, nm,
                                          batch_size=settings["batch_size"],
                                          **settings["sparsegpt"])
    weights = scope_weights(model, settings["scope"])
    try:
        mask = masks.nm_mask(weights, *nm) if nm else masks.grid_masks(weights, [sparsity],
                                                                        method)[sparsity]
    except ValueError as exc:
        raise ParamsError(f"llm: {exc}") from exc
    masks.apply_mask(weights, mask)
    return mask


def prune_and_evaluate(settings: dict, device: str, model_name: str, location: str, method: str,
                       level: str, corpus_dir: str | Path, metrics_path: str | Path,
                       mask_path: str | Path, predictions_path: str | Path | None = None,
                       windows_path: str | Path | None = None) -> dict:
    """One-shot prune a causal LM (no fine-tuning) with the rule's `settings` (the llm section)
    and evaluate it zero-shot: held-out perplexity and multiple-choice accuracy. Writes the mask
    (packed), the metrics, each question's result (`predictions_path`) and each held-out window's
    loss (`windows_path`)."""
    corpus_dir = Path(corpus_dir)
    heldout = _read_jsonl(corpus_dir / "heldout.jsonl")
    model, tokenizer = sources.load_causal_lm(location)
    device = job_device(device)
    model = model.to(device)
    start = time.perf_counter()
    mask = {k: v.cpu() for k, v in _prune(settings, model, tokenizer, method, level,
                                          corpus_dir).items()}
    prune_seconds = time.perf_counter() - start
    evaluated_in = precision(settings["precision"], device.type)
    if evaluated_in == "bf16":
        model = model.to(torch.bfloat16)
    windows = llm_eval.token_windows(tokenizer, heldout, **settings["perplexity"])
    ppl = llm_eval.perplexity(model, windows, settings["batch_size"])
    if settings["benchmark"] == "mmlu":
        choice = llm_eval.mmlu(model, tokenizer, settings["batch_size"], settings["mmlu_fewshot"])
    else:
        questions = _read_jsonl(corpus_dir / "definitions.jsonl")
        choice = llm_eval.multiple_choice(model, tokenizer, questions,
                                          4 * settings["batch_size"])
    info = {"model": model_name, "method": method, "level": level,
            "target_sparsity": _sparsity_of(level), "scope": settings["scope"],
            "model_type": model.config.model_type, "source": location}
    masks.save_mask(mask_path, mask, info, packed=True)
    report = masks.sparsity_report(mask, info["model_type"])
    nm = levels.parse_nm(level)
    record = {**{k: info[k] for k in ("model", "method", "level")},
              "sparsity": info["target_sparsity"], "pattern": f"{nm[0]}:{nm[1]}" if nm else "",
              "scope_sparsity": report["sparsity"], "perplexity": ppl["perplexity"],
              "heldout_loss": ppl["loss"], "heldout_tokens": ppl["tokens"],
              "accuracy": choice["accuracy"], "questions": choice["questions"],
              "chance": choice["chance"], "benchmark": settings["benchmark"],
              **{f"accuracy_{c}": v for c, v in choice.get("categories", {}).items()},
              "prune_time_s": round(prune_seconds, 2),
              "wall_time_s": round(time.perf_counter() - start, 2), "settings": settings,
              "mask": str(mask_path), "device": device_name(device), "precision": evaluated_in}
    if predictions_path is not None:
        write_csv(predictions_path, pd.DataFrame(choice["per_example"]))
    if windows_path is not None:
        write_csv(windows_path, pd.DataFrame({"window": range(len(ppl["per_window"]["loss"])),
                                              **ppl["per_window"]}))
    write_json(metrics_path, without_timings(record))
    return record


def prune_sharded(params: dict, checkpoint: str | Path, sparsities: list[float],
                  out_dir: str | Path) -> dict[float, Path]:
    """Global OMP of a sharded checkpoint over llm.scope, streamed shard by shard (`sharded`):
    the masks `omp-global` would give, on a machine smaller than the model in fp32."""
    from ..pruning.scope import classify, scope_problem
    from ..pruning.sharded import omp_global_sharded

    checkpoint = Path(checkpoint)
    config = read_json(checkpoint / "config.json")
    problem = scope_problem(config.get("model_type"))
    if problem:
        raise ArtefactError(f"{checkpoint}/config.json: {problem}")
    shards = sorted(checkpoint.glob("*.safetensors"))
    if not shards:
        raise ArtefactError(f"{checkpoint}: no *.safetensors shards; point --checkpoint at a "
                            f"model directory (hf download <repo> --local-dir DIR)")
    components = params["llm"]["scope"]

    def in_scope(name: str) -> bool:
        where = classify(name.removeprefix("model."), config["model_type"])
        return where is not None and where[0] in components

    return omp_global_sharded(shards, in_scope, sparsities, Path(out_dir))

