"""The audit: clean artefacts pass, and each corruption a reviewer could meet is caught, one line
naming the file (a flipped mask bit, a broken nesting or N:M pattern, a weight that came back, an
edited metric, a truncated checkpoint)."""

from __future__ import annotations

import json
import shutil
import time
from contextlib import chdir
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from essential_sparsity.cli.commands import main
from essential_sparsity.config.params import load_params
from essential_sparsity.evaluation import curves
from essential_sparsity.pruning import masks
from essential_sparsity.pruning.scope import scope_weights
from essential_sparsity.records import provenance
from essential_sparsity.records.audit import audit, claim_problems
from essential_sparsity.records.io import write_csv, write_json, write_tensors

ROOT = Path(__file__).resolve().parents[1]
SPARSITIES = [0.0, 0.5, 0.7]


def mask_path(root: Path, method: str, sparsity: float) -> Path:
    return root / "results" / "masks" / "tiny" / method / f"{sparsity:g}.safetensors"


@pytest.fixture
def built(tmp_path, tiny_bert) -> Path:
    """A results/ tree as the pipeline writes it: OMP masks, a 2:4 mask, a fine-tuned checkpoint
    under the 0.5 mask with its metrics and predictions, and the runs table."""
    weights = {k: v.detach() for k, v in scope_weights(tiny_bert, ["query", "ffn_in"]).items()}
    info = {"model": "tiny", "model_type": "bert", "scope": ["query", "ffn_in"]}
    for sparsity, mask in masks.grid_masks(weights, SPARSITIES, "omp-global").items():
        masks.save_mask(mask_path(tmp_path, "omp-global", sparsity), mask,
                        {**info, "method": "omp-global", "target_sparsity": sparsity})
    masks.save_mask(mask_path(tmp_path, "nm-2-4", 0.5), masks.nm_mask(weights, 2, 4),
                    {**info, "method": "nm-2-4", "target_sparsity": 0.5})
    mask = masks.load_mask(mask_path(tmp_path, "omp-global", 0.5))
    masks.apply_mask(scope_weights(tiny_bert, ["query", "ffn_in"]), mask)
    run = tmp_path / "results" / "finetune" / "tiny" / "task" / "omp-global" / "0.5" / "seed-0"
    write_tensors(run / "model.safetensors",
                  {k: v.detach().clone() for k, v in tiny_bert.state_dict().items()})
    record = {"model": "tiny", "task": "task", "method": "omp-global", "sparsity": 0.5,
              "seed": 0, "metric": "accuracy", "value": 71.25, "validation_value": 70.0,
              "test_loss": 0.61, "test_examples": 400, "steps": 12, "wall_time_s": 3.5,
              "scope_sparsity": 0.5,
              "mask": str(mask_path(tmp_path, "omp-global", 0.5).relative_to(tmp_path))}
    write_json(run / "metrics.json", record)
    labels = [i % 2 for i in range(400)]
    predicted = [label if i < 285 else 1 - label for i, label in enumerate(labels)]  # 71.25%
    correct = [int(p == label) for p, label in zip(predicted, labels, strict=True)]
    write_csv(run / "predictions.csv", pd.DataFrame({
        "example": range(400), "label": labels, "predicted": predicted, "correct": correct,
        "score": [100 * c for c in correct]}))
    write_csv(tmp_path / "results" / "tables" / "finetune_runs.csv",
              curves.runs_table([run / "metrics.json"]))
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    record_everything(tmp_path)
    return tmp_path


def record_everything(root: Path) -> None:
    """A provenance record beside every artefact, as the pipeline's jobs leave them."""
    settings = load_params(root / "params.yaml", "smoke")
    context = provenance.job_context(settings, "test", {}, "cpu", [])
    with chdir(root):
        artefacts = [str(p.relative_to(root)) for pattern in provenance.ARTEFACTS
                     for p in root.glob(pattern)]
        provenance.write_records(artefacts, [], context, time.time())


def rewrite_mask(path: Path, change) -> None:
    """Edit a saved mask's tensors in place, keeping its metadata (what a bit flip on disk does)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path), metadata=metadata)


def first(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    return tensors[sorted(tensors)[0]].view(-1)


def test_clean_artefacts_pass_and_the_cli_exits_0(built, capsys):
    assert audit(built) == []
    assert main(["audit", "--root", str(built)]) == 0


def test_a_flipped_mask_bit_breaks_the_count_and_the_report(built):
    path = mask_path(built, "omp-global", 0.5)

    def flip(tensors):
        keep = first(tensors)
        index = int((~keep).nonzero()[0])
        keep[index] = True

    rewrite_mask(path, flip)
    problems = claim_problems(built)
    assert any(line.startswith(f"{path}: prunes") and "its report says" in line
               for line in problems), problems
    assert any("not round(0.5" in line for line in problems), problems


def test_a_swap_that_keeps_the_count_still_breaks_nesting(built):
    path = mask_path(built, "omp-global", 0.7)
    outer = masks.load_mask(mask_path(built, "omp-global", 0.5))

    def swap(tensors):
        keep, removed_at_half = first(tensors), ~first(outer)
        kept_index = int(keep.nonzero()[0])
        new_index = int((~keep & removed_at_half).nonzero()[0])
        keep[kept_index], keep[new_index] = False, True

    rewrite_mask(path, swap)
    problems = claim_problems(built)
    assert problems == [f"{path}: keeps 1 weights that {mask_path(built, 'omp-global', 0.5)} "
                        f"removed; masks of one model and method must be nested"]


def test_a_broken_n_m_group_is_caught(built):
    path = mask_path(built, "nm-2-4", 0.5)

    def move(tensors):
        keep = first(tensors)
        kept = int(keep[:4].nonzero()[0])
        removed = int((~keep[4:8]).nonzero()[0]) + 4
        keep[kept], keep[removed] = False, True  # group 1 keeps 1, group 2 keeps 3

    rewrite_mask(path, move)
    problems = claim_problems(built)
    assert len(problems) == 1 and "does not keep 2 of every 4" in problems[0], problems


def test_a_pruned_weight_that_came_back_is_caught(built):
    checkpoint = next(built.glob("results/finetune/**/model.safetensors"))
    mask = masks.load_mask(mask_path(built, "omp-global", 0.5))
    state = load_file(str(checkpoint))
    name = sorted(mask)[0]
    key = next(k for k in state if k.endswith(name))
    state[key].view(-1)[int((~mask[name]).view(-1).nonzero()[0])] = 0.25
    save_file(state, str(checkpoint))
    assert claim_problems(built) == [f"{checkpoint}: 1 weights of {name} that "
                            f"{mask_path(built, 'omp-global', 0.5)} removed are not zero"]


def test_an_edited_metric_and_a_truncated_checkpoint_are_caught(built, capsys):
    metrics = next(built.glob("results/finetune/**/metrics.json"))
    record = json.loads(metrics.read_text())
    metrics.write_text(json.dumps({**record, "value": 91.25}))
    checkpoint = metrics.with_name("model.safetensors")
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    problems = audit(built)
    assert any(line.startswith(f"{checkpoint}: corrupt safetensors") for line in problems)
    assert any("finetune_runs.csv: value of" in line and "71.25" in line and "91.25" in line
               for line in problems), problems
    assert f"{metrics.with_name('predictions.csv')}: its scores average 71.2500, {metrics} says " \
           "91.2500" in problems
    for edited in (metrics, checkpoint):
        assert any(line.startswith(f"{edited}: changed since it was made") for line in problems)
    assert main(["audit", "--root", str(built)]) == 1
    assert len(capsys.readouterr().out.strip().splitlines()) == len(problems)


def test_predictions_short_of_the_test_split_are_caught(built):
    predictions = next(built.glob("results/finetune/**/predictions.csv"))
    table = pd.read_csv(predictions)
    write_csv(predictions, table.iloc[:-1])
    assert f"{predictions}: 399 examples, {predictions.with_name('metrics.json')} says 400" \
        in audit(built)


def test_a_causal_lm_runs_questions_and_windows_add_up_to_its_metrics(tmp_path):
    run = tmp_path / "results" / "llm" / "tiny" / "omp-global" / "0.5"
    write_json(run / "metrics.json", {"questions": 4, "accuracy": 50.0, "heldout_tokens": 30,
                                      "heldout_loss": 2.5})
    write_csv(run / "predictions.csv", pd.DataFrame({
        "example": range(4), "answer": [0, 1, 2, 3], "predicted": [0, 1, 0, 0],
        "correct": [1, 1, 0, 0], "score": [100, 100, 0, 0]}))
    windows = run / "windows.csv"
    write_csv(windows, pd.DataFrame({"window": [0, 1], "tokens": [15, 15], "loss": [2.0, 3.0]}))
    assert claim_problems(tmp_path) == []
    write_csv(windows, pd.DataFrame({"window": [0, 1], "tokens": [15, 15], "loss": [2.0, 3.5]}))
    assert claim_problems(tmp_path) == [f"{windows}: its losses average 2.750000, "
                                        f"{run / 'metrics.json'} says 2.500000"]


def test_each_runs_table_answers_for_its_own_tasks(built):
    """Figure 4's runs sit beside Figure 2's under results/finetune: each table must hold its
    own runs, and neither is blamed for the other's."""
    run = next(built.glob("results/finetune/**/metrics.json"))
    other = built / "results" / "finetune" / "tiny" / "arith-one-step" / "omp-global" / "0.5"
    other = other / "seed-0" / "metrics.json"
    other.parent.mkdir(parents=True)
    other.write_text(json.dumps({**json.loads(run.read_text()), "task": "arith-one-step"}))
    table = built / "results" / "tables" / "arithmetic_runs.csv"
    write_csv(table, curves.runs_table([other]))
    assert claim_problems(built) == []
    write_csv(table, curves.runs_table([other]).iloc[:0])
    assert claim_problems(built) == [f"{table}: lacks the run {other}"]


def dvc_records(root: Path, stage: str, out: str, entries: dict[str, str]) -> None:
    """What `dvc repro` leaves for a directory output: its stage in dvc.lock, and the listing
    of its files' MD5s in the cache."""
    digest = "0123456789abcdef0123456789abcdef.dir"
    listing = root / ".dvc" / "cache" / "files" / "md5" / digest[:2] / digest[2:]
    listing.parent.mkdir(parents=True)
    listing.write_text(json.dumps([{"md5": v, "relpath": k} for k, v in entries.items()]))
    lock = {"schema": "2.0", "stages": {stage: {"outs": [{"path": out, "md5": digest}]}}}
    (root / "dvc.lock").write_text(json.dumps(lock))
    shutil.copy(ROOT / "dvc.yaml", root / "dvc.yaml")


def test_every_artefact_needs_a_provenance_record(built):
    table = built / "results" / "tables" / "finetune_runs.csv"
    provenance.record_path(table).unlink()
    assert audit(built) == [f"{table}: no provenance record (finetune_runs.csv.prov.json or one "
                            f"of a directory holding it); rebuild it"]


def test_provenance_agrees_with_dvc_and_params_until_either_changes(built):
    """A mask whose record matches dvc.lock and params.yaml passes; DVC's hash of another file,
    or a prune setting edited after the mask was made, is one line each."""
    mask = mask_path(built, "omp-global", 0.5)
    relpath = str(mask.relative_to(built / "results" / "masks"))
    dvc_records(built, "prune", "results/masks", {relpath: provenance.md5(mask)})
    assert audit(built) == []
    dvc_records_again = built / ".dvc"
    shutil.rmtree(dvc_records_again)
    dvc_records(built, "prune", "results/masks", {relpath: "f" * 32})
    assert audit(built) == [f"{mask}: its record's MD5 {provenance.md5(mask)} is not the "
                            f"{'f' * 32} that dvc.lock's prune stage recorded"]
    params = built / "params.yaml"
    params.write_text(params.read_text().replace("random_seed: 0", "random_seed: 1", 1))
    assert any(line == f"{mask}: made with other prune than params.yaml's (profile smoke); "
               f"rebuild it (dvc repro)" for line in audit(built))


def test_a_changed_input_makes_its_outputs_stale(built):
    mask = mask_path(built, "omp-global", 0.5)
    metrics = next(built.glob("results/finetune/**/metrics.json"))
    context = provenance.job_context(load_params(built / "params.yaml", "smoke"), "finetune",
                                     {"seed": 0}, "cpu", ["fp32"])
    with chdir(built):
        provenance.write_records([str(metrics.relative_to(built))],
                                 [str(mask.relative_to(built))], context, time.time())
    assert audit(built) == []
    rewrite_mask(mask, lambda tensors: None)  # the same tensors, written again: same bytes
    assert audit(built) == []
    mask.write_bytes(mask.read_bytes() + b" ")
    problems = audit(built)
    assert f"{metrics}: its input {mask.relative_to(built)} changed since it was made" in problems
    assert any(line.startswith(f"{mask}: changed since it was made") for line in problems)


def test_a_directory_is_hashed_by_its_files_not_their_records(tmp_path):
    run = tmp_path / "run"
    (run / "step-1").mkdir(parents=True)
    (run / "step-1" / "weights.bin").write_bytes(b"abc")
    before = provenance.md5(run)
    provenance.record_path(run / "step-1" / "weights.bin").write_text("{}")
    assert provenance.md5(run) == before
    (run / "step-1" / "weights.bin").write_bytes(b"abd")
    assert provenance.md5(run) != before and before.endswith(".tree")


def test_the_cli_records_each_output_of_a_job_with_its_inputs(built):
    """What every Snakemake rule runs: a subcommand told its outputs and inputs (from the project
    directory, whose dvc.yaml names the params keys the records hash)."""
    shutil.copy(ROOT / "dvc.yaml", built / "dvc.yaml")
    report = mask_path(built, "omp-global", 0.5).with_suffix(".json")
    write_json(report, masks.sparsity_report(masks.load_mask(report.with_suffix(
        ".safetensors")), "bert"))
    table = built / "results" / "tables" / "mask_table.csv"
    with chdir(built):
        assert main(["--params", "params.yaml", "--profile", "smoke",
                     "--record-output", str(table.relative_to(built)),
                     "--record-input", str(report.relative_to(built)),
                     "mask-table", "--report", str(report), "--out", str(table)]) == 0
    record = json.loads(provenance.record_path(table).read_text())
    assert record["md5"] == provenance.md5(table) and record["command"] == "mask-table"
    assert record["inputs"] == {str(report.relative_to(built)): provenance.md5(report)}
    assert record["profile"] == "smoke" and record["device"] == "cpu"
    run = json.loads(provenance.record_path(table, provenance.RUN_SUFFIX).read_text())
    assert run["artefact"] == record["artefact"] and run["scheduler_job"] is None
    assert {"host", "started", "wall_time_s"} <= set(run) and not set(run) & set(record) - {
        "artefact"}
    assert record["params"]["prune"] == provenance.value_hash(
        load_params(built / "params.yaml", "smoke")["prune"])
