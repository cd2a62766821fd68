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
import yaml

from . import arithmetic, claims, data, evaluate, finetune, images, levels, masks, qa, sources
from .device import device_name, job_device
from .io import (
    ArtefactError,
    atomic_path,
    read_json,
    read_metadata,
    read_tensors,
    write_json,
    write_tensors,
)
from .params import ParamsError, finetune_settings, format_sparsity
from .scope import scope_weights


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
    model_type = json.loads(read_metadata(checkpoint)["config"])["model_type"]
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


def finetune_run(params: dict, model: str, task: str, mask_path: str | Path, seed: int,
                 data_dir: str | Path, metrics_path: str | Path,
                 checkpoint_path: str | Path | None = None, location: str | None = None) -> dict:
    """Fine-tune the pre-trained model under a fixed mask; write metrics (and the checkpoint).
    `location` is the checkpoint of a model the pipeline pre-trained itself."""
    settings = finetune_settings(params, task, model)
    torch.use_deterministic_algorithms(True)
    info = masks.mask_info(mask_path)
    mask = masks.load_mask(mask_path)
    labels = data.label_names(data_dir)
    splits, prepare = _task_inputs(model, task, data_dir, settings, location)
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
              "mask": str(mask_path), "label_names": labels, "device": device_name(device)}
    if answering:  # SQuAD's second score, beside F1
        record.update(exact_match=test["exact_match"],
                      validation_exact_match=validation["exact_match"])
    if checkpoint_path is not None:
        state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        write_tensors(checkpoint_path, state,
                      metadata=finetune.checkpoint_metadata(net, {k: record[k] for k in
                                                                   ("model", "task", "method",
                                                                    "sparsity", "seed")}))
    write_json(metrics_path, record)
    return record


def _task_inputs(model: str, task: str, data_dir: str | Path, settings: dict,
                 location: str | None) -> tuple[dict, Callable[[dict], dict]]:
    """The splits of a task as stored, and what turns one batch into the model's inputs: token
    ids are encoded once up front; images stay uint8 and are resized and normalized per batch,
    with the pixel scaling the model was pre-trained with. A question-answering split also keeps
    each token's character span in the context, which only decoding reads."""
    if task in sources.QA_TASKS:
        tokenizer = sources.load_tokenizer(model, location)
        return ({s: qa.encode(tokenizer, data.read_split(data_dir, s), settings["max_length"])
                 for s in data.SPLITS}, qa.model_inputs)
    if not images.is_image_task(task):
        tokenizer = sources.load_tokenizer(model, location)
        return ({s: finetune.encode(tokenizer, data.read_split(data_dir, s),
                                    settings["max_length"]) for s in data.SPLITS},
                finetune.identity)
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


def finetune_tables(params: dict, metric_files: list[str], out_dir: str | Path,
                    metrics_json: str | Path) -> pd.DataFrame:
    """One row per run, drop vs sparsity, essential sparsity, LTH minus OMP, N:M drops."""
    out_dir = Path(out_dir)
    runs = evaluate.runs_table(metric_files)
    drops = evaluate.drop_table(runs)
    essential = evaluate.essential_sparsity(drops, params["evaluate"]["epsilon"])
    tables = {"finetune_runs": runs, "drop_vs_sparsity": drops, "essential_sparsity": essential,
              "lth_vs_omp": evaluate.lth_vs_omp(drops), "nm_patterns": evaluate.nm_drops(drops)}
    for name, frame in tables.items():
        write_csv(out_dir / f"{name}.csv", frame)
    write_json(metrics_json, evaluate.essential_metrics(essential))
    return essential


def arithmetic_tables(params: dict, metric_files: list[str],
                      out: dict[str, str | Path]) -> dict[str, pd.DataFrame]:
    """Figure 4's tables: every arithmetic run, drop vs sparsity and essential sparsity, each row
    with the paper's dataset the task is or, when generated, stands in for."""
    runs = evaluate.runs_table(metric_files)
    unknown = sorted(set(runs["task"]) - set(params["arithmetic"]["tasks"]))
    if unknown:
        raise ArtefactError(f"runs on {unknown[0]} are not arithmetic runs of this profile "
                            f"({', '.join(params['arithmetic']['tasks'])})")
    drops = evaluate.drop_table(runs)
    tables = {"runs": runs, "drop_vs_sparsity": drops,
              "essential_sparsity": evaluate.essential_sparsity(
                  drops, params["evaluate"]["epsilon"])}
    for name, frame in tables.items():
        frame.insert(2, "dataset", frame["task"].map(arithmetic.DATASETS))
        frame.insert(3, "generated", frame["task"].isin(arithmetic.GENERATED_TASKS))
        write_csv(out[name], frame)
    return tables


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


def claims_report(params: dict, claims_file: str | Path, tables_dir: str | Path,
                  out_csv: str | Path, out_md: str | Path) -> pd.DataFrame:
    """The paper's claims against our tables: a tidy table and a markdown page."""
    try:
        listed = yaml.safe_load(Path(claims_file).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ParamsError(f"{claims_file}: cannot read the claims ({exc})") from exc
    if not isinstance(listed, list):
        raise ParamsError(f"{claims_file}: expected a list of claims, got {type(listed).__name__}")
    table = claims.evaluate_claims(listed, tables_dir)
    write_csv(out_csv, table)
    with atomic_path(out_md) as tmp:
        tmp.write_text(claims.claims_markdown(table, params["profile"]))
    return table


def mask_table(report_path: str | Path, out_csv: str | Path) -> None:
    """Figure 1's table: pruned weights per component and layer."""
    write_csv(out_csv, evaluate.pruned_by_component(read_json(report_path)))


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
