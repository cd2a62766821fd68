"""`essential-sparsity audit`: every artefact checked against what it claims, by someone who did
not run the pipeline.

A mask claims a sparsity (its JSON report and target), nesting inside the masks of lower sparsity
of the same model and method (OMP and random grids, LTH rounds) and, for N:M methods, N kept in
every M. A fine-tuned checkpoint claims that the weights its mask removed are still exactly zero.
The fine-tuning runs tables (Figure 2's and Figure 4's) claim to hold each of their runs'
metrics.json. Every artefact claims, in its provenance record, what made it: its own MD5, the
params, DVC's hash and its inputs' MD5s (`provenance`). Each broken claim is one line naming the
file; an unreadable artefact is one too, and the audit goes on to the next. Every path an artefact
names (a run's mask, a record's artefact and inputs) must lie inside the project: the audit reads
nothing else.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from ..catalog.tasks import ARITHMETIC, task
from ..config.levels import parse_nm
from ..config.params import load_params
from ..evaluation.curves import RUN_COLUMNS
from ..pruning.masks import checkpoint_weight, load_mask, mask_info, n_pruned
from .io import ArtefactError, inside, read_json, read_tensors
from .provenance import provenance_problems

EXACT_METHODS = ("omp-global", "random", "lth")  # round(s x N) weights over the whole scope
MASKS = ("results/masks/*/*/*.safetensors", "results/lth/*/*/round-*.safetensors",
         "results/llm/*/*/*/mask.safetensors")
# What reading a field of the wrong shape raises (a string where a number belongs, a list where a
# record does): the artefact is damaged, and that is its one line.
MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError, ZeroDivisionError)


def _checked(path: Path, check: Callable[[Path], list[str]]) -> list[str]:
    """check(path)'s problems, or one line when the artefact is too damaged to check."""
    try:
        return check(path)
    except ArtefactError as exc:
        return [str(exc)]
    except MALFORMED as exc:
        return [f"{path}: malformed ({exc!r}); delete it and rebuild it with snakemake {path}"]


def _field(record: dict, key: str, path: Path) -> object:
    if key not in record:
        raise ArtefactError(f"{path}: has no {key!r}, which the pipeline writes; delete it and "
                            f"rebuild it with snakemake {path}")
    return record[key]


# The fields of a mask's report the audit holds the mask to, and what each must be.
REPORT_FIELDS = {"weights": int, "pruned": int, "target_sparsity": int | float, "method": str}


def _read_mask(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    mask_info(path)  # the metadata a fine-tuning job reads: it must be whole too
    report_path = path.with_suffix(".json")
    report = read_json(report_path)
    for key, kind in REPORT_FIELDS.items():
        if not isinstance(report.get(key), kind):
            raise ArtefactError(f"{report_path}: its {key!r} is {report.get(key)!r}, not what "
                                f"a sparsity report holds; rebuild it with snakemake {path}")
    return load_mask(path), report


def mask_problems(path: Path, mask: dict[str, torch.Tensor], report: dict) -> list[str]:
    """The mask's counts against its report, its sparsity against its target, and its N:M
    pattern."""
    weights = sum(keep.numel() for keep in mask.values())
    if not weights:
        return [f"{path}: holds no weights; delete it and rebuild it with snakemake {path}"]
    problems = []
    pruned = sum(int((~keep).sum()) for keep in mask.values())
    if (weights, pruned) != (report.get("weights"), report.get("pruned")):
        problems.append(f"{path}: prunes {pruned} of {weights} weights, its report says "
                        f"{report.get('pruned')} of {report.get('weights')}")
    target = float(report.get("target_sparsity", -1))
    if report.get("method") in EXACT_METHODS:
        if pruned != n_pruned(target, weights):
            problems.append(f"{path}: prunes {pruned} weights, not round({target:g} x {weights})"
                            f" = {n_pruned(target, weights)}")
    elif abs(pruned / weights - target) > 1e-3:
        problems.append(f"{path}: sparsity {pruned / weights:.4f}, not its target {target:g}")
    nm = parse_nm(report.get("level") or report.get("method", ""))
    if nm:
        problems += [f"{path}: {name} does not keep {nm[0]} of every {nm[1]} weights of a row"
                     for name, keep in mask.items() if not _keeps_n_of_m(keep, *nm)]
    return problems


def _keeps_n_of_m(keep: torch.Tensor, n: int, m: int) -> bool:
    if keep.shape[-1] % m:
        return False
    return bool(torch.all(keep.reshape(-1, m).sum(-1) == n))


def _not_nested(inner: dict[str, torch.Tensor], outer: dict[str, torch.Tensor]) -> int:
    """Weights kept by the sparser mask that the denser one removed (0 when nested)."""
    if inner.keys() != outer.keys() or any(inner[n].shape != outer[n].shape for n in inner):
        return -1
    return sum(int((inner[name] & ~outer[name]).sum()) for name in inner)


def nesting_problems(chain: list[tuple[float, Path, dict[str, torch.Tensor]]]) -> list[str]:
    """Each mask of a chain (sorted by sparsity) lies inside the one before it."""
    problems = []
    for (_, outer_path, outer), (_, inner_path, inner) in itertools.pairwise(chain):
        leaks = _not_nested(inner, outer)
        if leaks:
            what = "masks other matrices" if leaks < 0 else f"keeps {leaks} weights"
            problems.append(f"{inner_path}: {what} that {outer_path} removed; masks of one model "
                            f"and method must be nested")
    return problems


def _masks(root: Path) -> list[str]:
    problems: list[str] = []
    chains: dict[tuple, list] = defaultdict(list)
    for pattern in MASKS:
        for path in sorted(root.glob(pattern)):
            problems += _checked(path, lambda p: _check_mask(root, p, chains))
    for chain in chains.values():
        problems += nesting_problems(sorted(chain, key=lambda item: item[0]))
    return problems


def _check_mask(root: Path, path: Path, chains: dict[tuple, list]) -> list[str]:
    """One mask's own claims; it joins the chain of masks it must nest in."""
    mask, report = _read_mask(path)
    problems = mask_problems(path, mask, report)
    method, where = report.get("method", ""), path.relative_to(root).parts[1]
    if where == "lth":
        key = ("lth", report.get("model"), report.get("task"))
    elif where == "masks" and not parse_nm(method):
        key = ("grid", report.get("model"), method)
    else:
        return problems
    chains[key].append((float(report.get("target_sparsity", 0)), path, mask))
    return problems


def checkpoint_problems(checkpoint: Path, mask_path: Path) -> list[str]:
    """The weights the run's mask removed are exactly zero in its saved checkpoint."""
    try:
        state = read_tensors(checkpoint)
        mask = load_mask(mask_path)
        model_type = mask_info(mask_path)["model_type"]
    except ArtefactError as exc:
        return [str(exc)]
    problems = []
    for name, keep in mask.items():
        try:
            weight = checkpoint_weight(state, name, checkpoint, model_type)
        except ArtefactError as exc:
            problems.append(str(exc))
            continue
        if weight.shape != keep.shape:
            problems.append(f"{checkpoint}: {name} has shape {tuple(weight.shape)}, its mask "
                            f"{mask_path} {tuple(keep.shape)}; rebuild it with snakemake "
                            f"{checkpoint}")
            continue
        leaked = int((weight[~keep] != 0).sum())
        if leaked:
            problems.append(f"{checkpoint}: {leaked} weights of {name} that {mask_path} removed "
                            f"are not zero")
    return problems


def _checkpoints(root: Path) -> list[str]:
    return [line for checkpoint in sorted(root.glob("results/finetune/**/model.safetensors"))
            for line in _checked(checkpoint, lambda c: _check_checkpoint(root, c))]


def _check_checkpoint(root: Path, checkpoint: Path) -> list[str]:
    """The checkpoint against the mask its run's metrics name (inside the project)."""
    metrics = checkpoint.with_name("metrics.json")
    mask = inside(root, _field(read_json(metrics), "mask", metrics), metrics)
    return checkpoint_problems(checkpoint, mask)


# Where per-example results live, and the metrics.json fields they must add up to: how many
# examples, and the metric their scores average to.
PREDICTIONS = {"results/finetune/**/predictions.csv": ("test_examples", "value"),
               "results/llm/**/predictions.csv": ("questions", "accuracy")}


def _read_table(path: Path, metrics: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ArtefactError(f"{path}: not a readable table ({exc}); rebuild it with snakemake "
                            f"{metrics}") from exc


def _agrees(ours: float, theirs: float) -> bool:
    return math.isclose(ours, theirs, rel_tol=1e-5, abs_tol=1e-4)


def predictions_problems(predictions: Path, examples_key: str, value_key: str) -> list[str]:
    """A run's per-example results are its metric example by example: one row per example, and
    their scores average to the metrics.json value."""
    metrics = predictions.with_name("metrics.json")
    record = read_json(metrics)
    table = _read_table(predictions, metrics)
    examples = _field(record, examples_key, metrics)
    value = _field(record, value_key, metrics)
    if len(table) != examples:
        return [f"{predictions}: {len(table)} examples, {metrics} says {examples}"]
    mean = float(table["score"].mean())
    if not _agrees(mean, value):
        return [f"{predictions}: its scores average {mean:.4f}, {metrics} says {value:.4f}"]
    return []


def windows_problems(windows: Path) -> list[str]:
    """A causal-LM run's held-out windows: their losses, weighted by tokens, are its held-out
    loss."""
    metrics = windows.with_name("metrics.json")
    record = read_json(metrics)
    table = _read_table(windows, metrics)
    tokens = _field(record, "heldout_tokens", metrics)
    loss = _field(record, "heldout_loss", metrics)
    if int(table["tokens"].sum()) != tokens:
        return [f"{windows}: {int(table['tokens'].sum())} tokens, {metrics} says {tokens}"]
    mean = float((table["loss"] * table["tokens"]).sum() / tokens)
    if not _agrees(mean, loss):
        return [f"{windows}: its losses average {mean:.6f}, {metrics} says {loss:.6f}"]
    return []


def _per_example(root: Path) -> list[str]:
    checks = [(path, functools.partial(predictions_problems, examples_key=examples,
                                       value_key=value))
              for pattern, (examples, value) in PREDICTIONS.items()
              for path in sorted(root.glob(pattern))]
    checks += [(path, windows_problems) for path in sorted(root.glob("results/llm/**/windows.csv"))]
    return [line for path, check in checks for line in _checked(path, check)]


def _in_finetune_runs(table: pd.DataFrame, key: tuple) -> bool:
    """Figure 2's table: every run of its models on the text tasks (not those pre-trained here,
    not the arithmetic tasks)."""
    return key[0] in set(table["model"]) and task(key[1]).kind != ARITHMETIC


def _in_arithmetic_runs(_table: pd.DataFrame, key: tuple) -> bool:
    return task(key[1]).kind == ARITHMETIC


RUN_TABLES = {"finetune_runs.csv": _in_finetune_runs, "arithmetic_runs.csv": _in_arithmetic_runs}


def table_problems(table_path: Path, metric_files: list[Path],
                   belongs: Callable[[pd.DataFrame, tuple], bool]) -> list[str]:
    """A runs table holds exactly the metrics.json values (to its 6 digits) of the runs that
    belong in it."""
    try:
        table = pd.read_csv(table_path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        return [f"{table_path}: not a readable table ({exc})"]
    keys = ["model", "task", "method", "sparsity", "seed"]
    runs: dict[tuple, tuple[Path, dict]] = {}

    def read_run(path: Path) -> list[str]:
        record = read_json(path)
        runs[tuple(_field(record, k, path) for k in keys)] = (path, record)
        return []

    problems = [line for path in metric_files for line in _checked(path, read_run)]
    for row in table.to_dict("records"):
        key = tuple(row[k] for k in keys)
        if key not in runs:
            problems.append(f"{table_path}: row {key} has no metrics.json under results/finetune")
            continue
        path, record = runs.pop(key)
        for column in RUN_COLUMNS[5:]:
            ours, theirs = row[column], record.get(column)
            if isinstance(theirs, float | int) and not math.isclose(ours, theirs, rel_tol=1e-5):
                problems.append(f"{table_path}: {column} of {key} is {ours}, {path} says "
                                f"{theirs}")
    problems += [f"{table_path}: lacks the run {path}" for key, (path, _) in runs.items()
                 if belongs(table, key)]
    return problems


def claim_problems(root: str | Path) -> list[str]:
    """What the masks, checkpoints and runs tables claim about themselves, one line per broken
    claim."""
    root = Path(root)
    problems = _masks(root) + _checkpoints(root) + _per_example(root)
    runs = sorted(root.glob("results/finetune/**/metrics.json"))
    for name, belongs in RUN_TABLES.items():
        table = root / "results" / "tables" / name
        if table.is_file():
            problems += _checked(table, functools.partial(table_problems, metric_files=runs,
                                                           belongs=belongs))
    return problems


def audit(root: str | Path) -> list[str]:
    """Every violation under root's results/ and reports/, one line each; empty when everything
    holds: the artefacts' own claims, then their provenance."""
    root = Path(root)
    settings = functools.cache(lambda profile: load_params(root / "params.yaml", profile))
    problems = claim_problems(root) + provenance_problems(root, settings)
    return list(dict.fromkeys(problems))  # a run's metrics are read for each table: once each
