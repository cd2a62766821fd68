"""One function per pipeline stage: each reads its inputs, calls the library, writes its outputs
atomically. The Snakemake rules call these through the CLI; tests call them directly."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from . import arithmetic, data, finetune, images, levels, masks, qa, sources
from .device import device_name, job_device, precision
from .io import (
    ArtefactError,
    read_json,
    read_metadata_json,
    read_tensors,
    without_timings,
    write_json,
    write_tensors,
)
from .params import ParamsError, finetune_settings, format_sparsity
from .scope import scope_weights
from .tables import write_csv


def split_task(params: dict, task: str, out_dir: str | Path) -> None:
    """Write the task's train/validation/test splits and their label counts: text as JSON
    lines, images as uint8 tensors, split by one rule."""
    info = {"task": task, "seed": params["data"]["seed"], "settings": params["data"]}
    if images.is_image_task(task):
        source = images.load_image_task(task)
        arrays = data.make_image_splits(source, params["data"], params["data"]["seed"], task)
        data.write_image_splits(out_dir, arrays, source.label_names, info)
        return
    if task in arithmetic.ARITHMETIC_TASKS:
        info["generated"] = params["arithmetic"]["generated"]
        source = arithmetic.load_arithmetic_task(task, info["generated"])
    else:
        source = sources.load_task(task)
    frames = data.make_splits(source, params["data"], params["data"]["seed"], task)
    data.write_splits(out_dir, frames, source.label_names, info)


def prune(params: dict, model: str, method: str, sparsity: float, out_path: str | Path,
          location: str | None = None) -> dict:
    """Compute one mask on the pre-trained weights (a grid method at `sparsity`, or an N:M
    pattern, whose sparsity is 1 - N/M) and save it with its sparsity report. `location` is the
    checkpoint of a model the pipeline pre-trained itself."""
    encoder = sources.load_encoder(model, location)
    weights = scope_weights(encoder, params["prune"]["scope"])
    nm = levels.parse_nm(method)
    if nm:
        if format_sparsity(sparsity) != format_sparsity(levels.nm_sparsity(*nm)):
            raise ParamsError(f"{method} is {levels.nm_sparsity(*nm):g} sparse, not {sparsity:g}")
        try:
            mask = masks.nm_mask(weights, *nm)
        except ValueError as exc:
            raise ParamsError(f"prune.nm_patterns: {exc}; remove the pattern from params.yaml "
                              f"for {model}") from exc
    else:
        seed = params["prune"]["random_seed"]
        (mask,) = masks.grid_masks(weights, [sparsity], method, seed).values()
    info = {"model": model, "method": method, "target_sparsity": sparsity,
            "scope": params["prune"]["scope"], "model_type": encoder.config.model_type,
            "source": location or sources.model_location(model)}
    if method == "random":
        info["seed"] = params["prune"]["random_seed"]
    masks.save_mask(out_path, mask, info)
    return read_json(Path(out_path).with_suffix(".json"))


def lth_round(params: dict, model: str, task: str, round_: int, checkpoint: str | Path,
              previous: str | Path, out_path: str | Path) -> dict:
    """One LTH round: prune the fine-tuned weights of the previous round's run to this round's
    sparsity, inside the previous round's mask (round 1: the dense run and its all-kept mask).
    The next fine-tuning starts from the pre-trained weights under this mask: that is the rewind."""
    sparsity = levels.lth_levels(params)[round_ - 1]
    state = read_tensors(checkpoint)
    model_type = read_metadata_json(checkpoint, "config")["model_type"]
    mask = masks.load_mask(previous)
    weights = {name: _state_tensor(state, name, checkpoint) for name in mask}
    leaked = sum(int((weights[name][~keep] != 0).sum()) for name, keep in mask.items())
    if leaked:
        raise ArtefactError(f"{checkpoint}: {leaked} weights pruned by {previous} are not zero; "
                            f"the checkpoint was not fine-tuned under that mask: rebuild it")
    new = masks.lth_prune(weights, mask, sparsity)
    info = {"model": model, "method": levels.LTH, "task": task, "round": round_,
            "target_sparsity": sparsity, "rate": params["lth"]["rate"],
            "seed": params["finetune"]["seeds"][0], "fine_tuned": str(checkpoint),
            "previous": str(previous), "scope": params["prune"]["scope"],
            "model_type": model_type, "source": sources.model_location(model)}
    masks.save_mask(out_path, new, info)
    return read_json(Path(out_path).with_suffix(".json"))


def _state_tensor(state: dict[str, torch.Tensor], name: str, path: str | Path) -> torch.Tensor:
    """An encoder weight of a classifier checkpoint, whose names carry the head's prefix."""
    found = [key for key in state if key == name or key.endswith("." + name)]
    if len(found) != 1:
        raise ArtefactError(f"{path}: {'no' if not found else 'several'} tensors named like "
                            f"{name}; the checkpoint belongs to another model: rebuild it")
    return state[found[0]]


def encode_task(params: dict, model: str, task: str, data_dir: str | Path,
                out_path: str | Path, location: str | None = None) -> dict:
    """A text task's splits as the model's token ids, written once per model and task: every
    fine-tuning run of the pair (each sparsity, seed and LTH round) reads them instead of loading
    the tokenizer and tokenizing again. Keys are `split/name`; the metadata names the max_length,
    which the runs check against their own settings."""
    max_length = finetune_settings(params, task, model)["max_length"]
    tokenizer = sources.load_tokenizer(model, location)
    encode = qa.encode if task in sources.QA_TASKS else finetune.encode
    tensors = {f"{split}/{name}": tensor for split in data.SPLITS
               for name, tensor in encode(tokenizer, data.read_split(data_dir, split),
                                          max_length).items()}
    info = {"model": model, "task": task, "max_length": max_length}
    write_tensors(out_path, tensors, metadata={"info": json.dumps(info, sort_keys=True)})
    return {**info, "examples": {split: finetune.rows(_split(tensors, split))
                                 for split in data.SPLITS}}


def read_encoded(path: str | Path, model: str, task: str,
                 max_length: int) -> dict[str, dict[str, torch.Tensor]]:
    """Split -> tensors of `encode_task`'s file, refused if encoded for another model, task or
    max_length than the run's."""
    stored = read_metadata_json(path, "info")
    wanted = {"model": model, "task": task, "max_length": max_length}
    for key, value in wanted.items():
        if stored.get(key) != value:
            raise ArtefactError(f"{path}: encoded with {key} {stored.get(key)}, the run's is "
                                f"{value}; rebuild it with snakemake {path}")
    tensors = read_tensors(path)
    return {split: _split(tensors, split) for split in data.SPLITS}


def _split(tensors: dict[str, torch.Tensor], split: str) -> dict[str, torch.Tensor]:
    prefix = f"{split}/"
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def finetune_run(params: dict, model: str, task: str, mask_path: str | Path, seed: int,
                 data_dir: str | Path, metrics_path: str | Path,
                 checkpoint_path: str | Path | None = None, location: str | None = None,
                 encoded_path: str | Path | None = None) -> dict:
    """Fine-tune the pre-trained model under a fixed mask; write metrics (and the checkpoint).
    `location` is the checkpoint of a model the pipeline pre-trained itself; a text task's
    splits come from `encoded_path` (`encode_task`'s file)."""
    settings = finetune_settings(params, task, model)
    torch.use_deterministic_algorithms(True)
    info = masks.mask_info(mask_path)
    mask = masks.load_mask(mask_path)
    labels = data.label_names(data_dir)
    splits, prepare = _task_inputs(model, task, data_dir, settings, location, encoded_path)
    answering = task in sources.QA_TASKS
    net = (sources.load_span_predictor(model, seed, location) if answering
           else sources.load_classifier(model, len(labels), seed, location))
    device = job_device(params["resources"]["device"])
    net = net.to(device)
    start = time.perf_counter()
    history = finetune.train(net, splits["train"], mask, settings, seed,
                             desc=f"{task} s={info['target_sparsity']:g} seed={seed}",
                             prepare=prepare)
    train_seconds = time.perf_counter() - start
    test, validation = (_scores(net, task, split, splits[split], data_dir, settings, prepare)
                        for split in ("test", "validation"))
    metric = qa.METRIC if answering else "accuracy"
    leaked = finetune.pruned_nonzero(net, mask)
    if leaked:
        raise RuntimeError(f"{leaked} pruned weights became non-zero during fine-tuning")
    report = masks.sparsity_report(mask, info["model_type"])
    record = {"model": model, "task": task, "method": info["method"],
              "sparsity": info["target_sparsity"], "scope_sparsity": report["sparsity"],
              "seed": seed, "metric": metric, "value": test[metric],
              "validation_value": validation[metric], "test_loss": test["loss"],
              "test_examples": test["examples"], "train_examples": finetune.rows(splits["train"]),
              "steps": history["steps"], "train_loss_per_epoch": history["train_loss_per_epoch"],
              "wall_time_s": round(time.perf_counter() - start, 2),
              "train_time_s": round(train_seconds, 2), "settings": settings,
              "mask": str(mask_path), "label_names": labels, "device": device_name(device),
              "precision": precision(settings["precision"], device.type)}
    if answering:  # SQuAD's second score, beside F1
        record.update(exact_match=test["exact_match"],
                      validation_exact_match=validation["exact_match"])
    if checkpoint_path is not None:
        state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        write_tensors(checkpoint_path, state,
                      metadata=finetune.checkpoint_metadata(net, {k: record[k] for k in
                                                                   ("model", "task", "method",
                                                                    "sparsity", "seed")}))
    write_json(metrics_path, without_timings(record))
    return record


def _task_inputs(model: str, task: str, data_dir: str | Path, settings: dict,
                 location: str | None, encoded_path: str | Path | None,
                 ) -> tuple[dict, Callable[[dict], dict]]:
    """The splits of a task as stored, and what turns one batch into the model's inputs: token
    ids come encoded (`encode_task`); images stay uint8 and are resized and normalized per batch,
    with the pixel scaling the model was pre-trained with. A question-answering split also keeps
    each token's character span in the context, which only decoding reads."""
    if not images.is_image_task(task):
        if encoded_path is None:
            raise ArtefactError(f"task {task} is text: its runs read the token ids "
                                f"`essential-sparsity encode` writes; pass them with --encoded")
        prepare = qa.model_inputs if task in sources.QA_TASKS else finetune.identity
        return read_encoded(encoded_path, model, task, settings["max_length"]), prepare
    scaling = sources.load_pixel_scaling(model, location)

    def prepare(batch: dict) -> dict:
        return {"pixel_values": images.pixel_values(batch["pixel_values"], **scaling),
                "labels": batch["labels"]}

    return {s: data.read_image_split(data_dir, s) for s in data.SPLITS}, prepare


def _scores(net: torch.nn.Module, task: str, split: str, encoded: dict, data_dir: str | Path,
            settings: dict, prepare: Callable[[dict], dict]) -> dict:
    """One split's metrics: for question answering SQuAD F1 and exact match of the decoded
    answers (against the split's contexts and gold answers, read again), else accuracy."""
    options = {"batch_size": settings["eval_batch_size"], "precision": settings["precision"]}
    if task in sources.QA_TASKS:
        return qa.evaluate(net, encoded, data.read_split(data_dir, split), **options)
    return finetune.evaluate(net, encoded, prepare=prepare, **options)


def mask_similarity(params: dict, lth_masks: list[str | Path], out_csv: str | Path) -> None:
    """Figure 10's table: cosine similarity of every LTH mask with the OMP mask of the same model
    and sparsity (computed here from the pre-trained weights, since LTH levels need not lie on the
    grid), and between the LTH masks of two tasks. A random mask pair at sparsity s would give
    1 - s on average: the `random_expectation` column."""
    found: dict[tuple[str, float], dict[str, Path]] = {}
    for path in map(Path, lth_masks):
        info = masks.mask_info(path)
        found.setdefault((info["model"], info["target_sparsity"]), {})[info["task"]] = path
    rows = []
    omp_methods = [m for m in params["prune"]["methods"] if m.startswith("omp-")]
    for model in sorted({model for model, _ in found}):
        at = sorted(s for m, s in found if m == model)
        weights = scope_weights(sources.load_encoder(model), params["prune"]["scope"])
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
