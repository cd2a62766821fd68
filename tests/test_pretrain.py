"""Pre-training from scratch on data subsets (Figure 8): the vocabulary and packing, nested
subsets and epoch-wise batches, BERT's masking, the resume after a kill, zero-weight counting and
the onset of abrupt sparsification, and the claims read from those tables."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st
from run_records import write_runs
from safetensors.torch import load_file

from essential_sparsity.config.levels import (
    pretrain_models,
    pretrain_run_settings,
    pretrain_tables_settings,
)
from essential_sparsity.config.params import ParamsError, load_params
from essential_sparsity.evaluation import claims
from essential_sparsity.records.io import ArtefactError, write_json, write_tensors
from essential_sparsity.stages import pretrain as pretrain_stages
from essential_sparsity.stages import pretrain_tables
from essential_sparsity.training import pretrain

TEXTS = [f"the {animal} {verb} over the {thing} by the {place} at dawn." for animal in
         ("fox", "dog", "cat", "owl", "hare") for verb in ("ran", "jumped", "looked", "sang")
         for thing in ("hill", "wall", "river") for place in ("mill", "farm", "sea")]


@pytest.fixture(scope="module")
def tokenizer():
    return pretrain.train_tokenizer(TEXTS, vocab_size=120, max_length=16)


def test_vocabulary_and_packing_make_full_bert_sequences(tokenizer):
    assert len(tokenizer) <= 120
    by_id = sorted(tokenizer.get_vocab(), key=tokenizer.get_vocab().get)
    special = pretrain.SPECIAL_TOKENS
    assert by_id == [*special, *sorted(set(by_id) - set(special))]  # ids never in hash order
    assert tokenizer.tokenize("The fox ran") == ["the", "fox", "ran"]  # lower-cased WordPiece
    packed = pretrain.pack_sequences(tokenizer, TEXTS, length=16, limit=None)
    assert packed.shape[1] == 16 and len(packed) > 10
    assert torch.all(packed[:, 0] == tokenizer.cls_token_id)
    assert torch.all(packed[:, -1] == tokenizer.sep_token_id)
    assert not torch.any(packed == tokenizer.pad_token_id)  # packed, never padded
    body = packed[:, 1:-1].flatten().tolist()
    first = tokenizer(TEXTS[0], add_special_tokens=False)["input_ids"]
    assert body[:len(first) + 1] == [*first, tokenizer.sep_token_id]  # in order, [SEP] between
    assert len(pretrain.pack_sequences(tokenizer, TEXTS, length=16, limit=5)) == 5


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 400), fractions=st.lists(st.floats(0.01, 1.0), min_size=2, max_size=5),
       seed=st.integers(0, 2**16))
def test_subsets_are_nested_and_sized(n, fractions, seed):
    subsets = {f: set(pretrain.nested_subset(n, f, seed).tolist()) for f in sorted(fractions)}
    for f, chosen in subsets.items():
        assert len(chosen) == max(1, round(f * n))
    ordered = list(subsets.values())
    assert all(small <= large for small, large in itertools.pairwise(ordered))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 50), batch=st.integers(1, 16), seed=st.integers(0, 2**16))
def test_each_epoch_visits_every_sequence_once(n, batch, seed):
    steps = -(-3 * n // batch)  # three epochs and a bit
    seen = torch.cat([pretrain.batch_indices(s, n, batch, seed) for s in range(steps)])
    for epoch in range(3):
        assert sorted(seen[epoch * n:(epoch + 1) * n].tolist()) == list(range(n))
    assert torch.equal(pretrain.batch_indices(5, n, batch, seed),
                       pretrain.batch_indices(5, n, batch, seed))


def test_masking_follows_bert_and_spares_special_tokens(tokenizer):
    ids = pretrain.pack_sequences(tokenizer, TEXTS, length=16, limit=None).long()
    inputs, labels = pretrain.mask_tokens(ids, torch.Generator().manual_seed(0), 0.15, tokenizer)
    chosen = labels != -100
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    assert not torch.any(chosen & special)
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])
    share = chosen.sum() / (~special).sum()
    assert 0.10 < share < 0.20
    masked = (inputs[chosen] == tokenizer.mask_token_id).float().mean()
    assert 0.65 < masked < 0.95


def write_data_dir(path: Path, tokenizer) -> None:
    """The layout build_data writes, from the test's own text."""
    packed = pretrain.pack_sequences(tokenizer, TEXTS, length=16, limit=None)
    tokenizer.save_pretrained(str(path / "tokenizer"))
    write_tensors(path / pretrain_stages.SEQUENCES, {"train": packed[8:], "heldout": packed[:8]})
    write_json(path / "meta.json", {"train_sequences": len(packed) - 8})


def resume_params(tmp_path: Path, steps: int) -> Path:
    """The smoke profile, with enough steps that a kill lands mid-run."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["profile"] = "smoke"
    smoke = raw["pretrain"]["profiles"]["smoke"]
    smoke.update({"steps": steps, "checkpoint_every": 10, "max_length": 16, "batch_size": 4,
                  "model": {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                            "intermediate_size": 32}})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def pretrain_command(params: Path, data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "essential_sparsity.cli.commands", "--params", str(params),
            "--threads", "1", "pretrain", "--model", "scratch-60", "--data-dir", str(data),
            "--out-dir", str(out)]


def test_a_killed_run_resumes_and_ends_with_the_same_weights(tmp_path, tokenizer):
    data = tmp_path / "data"
    write_data_dir(data, tokenizer)
    params = resume_params(tmp_path, steps=400)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    whole, killed = tmp_path / "whole" / "scratch-60", tmp_path / "killed" / "scratch-60"
    subprocess.run(pretrain_command(params, data, whole), env=env, check=True,
                   capture_output=True)

    job = subprocess.Popen(pretrain_command(params, data, killed), env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = killed.with_name("scratch-60.partial")
    deadline = time.monotonic() + 120
    while resume_step(partial) < 20 and time.monotonic() < deadline:  # checkpoint 20 complete
        time.sleep(0.01)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert not killed.exists(), "the run finished before the kill: raise its steps"
    resumed_from = int(load_meta(partial / pretrain.RESUME)["step"])
    assert 20 <= resumed_from < 400

    done = subprocess.run(pretrain_command(params, data, killed), env=env, check=True,
                          capture_output=True, text=True)
    assert f"resuming {partial} from step {resumed_from}" in done.stdout + done.stderr
    assert not partial.exists() and not (killed / pretrain.RESUME).exists()
    steps = sorted(p.name for p in whole.glob("step-*"))
    assert steps == sorted(p.name for p in killed.glob("step-*"))
    for step in steps:  # every checkpoint, before and after the kill, bit for bit
        a = load_file(str(whole / step / "model.safetensors"))
        b = load_file(str(killed / step / "model.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), step
    history = pd.read_json(whole / "run.json", typ="series")["history"]
    assert history == pd.read_json(killed / "run.json", typ="series")["history"]
    assert history[-1]["heldout_loss"] < history[0]["heldout_loss"]


def resume_step(partial: Path) -> int:
    """The step the run would resume from now (-1 before its first checkpoint); the resume file
    is renamed into place, so it is never read half-written."""
    path = partial / pretrain.RESUME
    return int(load_meta(path)["step"]) if path.is_file() else -1


def load_meta(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata()


def test_zero_weights_are_counted_exactly_per_component(tmp_path, tokenizer):
    settings_ = {"max_length": 16, "seed": 0,
                 "model": {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                           "intermediate_size": 32}}
    model = pretrain.build_model(settings_, tokenizer)
    with torch.no_grad():
        query = model.bert.encoder.layer[1].attention.self.query.weight
        query.fill_(1.0)
        query[0, :5] = 0.0
        query[1, :3] = 1e-4
        model.bert.embeddings.word_embeddings.weight.zero_()  # outside the scope
    model.save_pretrained(str(tmp_path / "ckpt"))
    rows = {r["component"]: r for r in pretrain_tables.zero_weights(
        tmp_path / "ckpt", ["query", "ffn_in"], tau=1e-3)}
    assert set(rows) == {"query", "ffn_in", "all"}
    ffn = model.bert.encoder.layer[0].intermediate.dense.weight
    near_ffn = sum(int((layer.intermediate.dense.weight.abs() <= 1e-3).sum())
                   for layer in model.bert.encoder.layer)
    other_query = int((model.bert.encoder.layer[0].attention.self.query.weight.abs()
                       <= 1e-3).sum())
    assert rows["query"]["zero"] == 5 and rows["query"]["near_zero"] == 8 + other_query
    assert rows["query"]["weights"] == 2 * 16 * 16
    assert rows["ffn_in"]["weights"] == 2 * ffn.numel() and rows["ffn_in"]["zero"] == 0
    assert rows["ffn_in"]["near_zero"] == near_ffn
    assert rows["all"]["near_zero"] == rows["query"]["near_zero"] + near_ffn
    with pytest.raises(ArtefactError, match="missing"):
        pretrain_tables.zero_weights(tmp_path / "nowhere", ["query"], 1e-3)


def zero_table(curves: dict[float, list[int]], every: int = 10) -> pd.DataFrame:
    return pd.DataFrame([{"model": f"scratch-{round(100 * f)}", "fraction": f, "step": i * every,
                          "tau": 1e-3, "component": "all", "weights": 1000, "zero": 0,
                          "near_zero": n, "zero_share": 0.0, "near_zero_share": n / 1000}
                         for f, counts in curves.items() for i, n in enumerate(counts)])


def test_onset_is_the_steepest_interval_and_the_claim_reads_it():
    jump = {1.0: [10, 11, 12, 60, 62, 63], 0.6: [10, 10, 11, 11, 40, 41]}
    onset = pretrain_tables.onset_table(zero_table(jump)).set_index("fraction")
    assert onset.loc[1.0, "onset_step"] == 30 and onset.loc[1.0, "steepest_from_step"] == 20
    assert onset.loc[0.6, "onset_step"] == 40
    assert onset.loc[1.0, "steepest_growth_per_step"] == pytest.approx(4.8)
    verdict = claims.abrupt_sparsification({"pretrain_zero_weights": zero_table(jump)}, 3.0)
    assert verdict["verdict"] == claims.REPRODUCED
    drift = {1.0: [10, 20, 30, 40, 50, 60], 0.6: [10, 11, 12, 60, 62, 63]}
    verdict = claims.abrupt_sparsification({"pretrain_zero_weights": zero_table(drift)}, 3.0)
    assert verdict["verdict"] == claims.NOT_REPRODUCED
    falling = {1.0: [60, 50, 40, 42, 12, 10]}
    onset = pretrain_tables.onset_table(zero_table(falling)).set_index("fraction")
    assert pd.isna(onset.loc[1.0, "onset_step"]) and onset.loc[1.0, "steepest_to_step"] == 30
    verdict = claims.abrupt_sparsification({"pretrain_zero_weights": zero_table(falling)}, 3.0)
    assert verdict["verdict"] == claims.NOT_REPRODUCED


def downstream(values: dict[float, float], examples: int) -> pd.DataFrame:
    return pd.DataFrame([{"model": f"scratch-{round(100 * f)}", "fraction": f, "task": task,
                          "sparsity": s, "value": v, "value_std": 0.0, "seeds": 1,
                          "test_examples": examples}
                         for f, v in values.items() for task in ("a", "b")
                         for s in (0.0, 0.5)])


def test_more_data_claim_needs_the_most_zeros_and_a_gain_beyond_noise():
    zeros = zero_table({1.0: [10, 50], 0.6: [10, 30]})
    clear = {"pretrain_zero_weights": zeros,
             "pretrain_drop_vs_sparsity": downstream({1.0: 80.0, 0.6: 70.0}, 1000)}
    assert claims.more_data_more_sparsity(clear)["verdict"] == claims.REPRODUCED
    noisy = {**clear, "pretrain_drop_vs_sparsity": downstream({1.0: 80.0, 0.6: 79.0}, 100)}
    assert claims.more_data_more_sparsity(noisy)["verdict"] == claims.INCONCLUSIVE
    worse = {**clear, "pretrain_drop_vs_sparsity": downstream({1.0: 70.0, 0.6: 80.0}, 1000)}
    assert claims.more_data_more_sparsity(worse)["verdict"] == claims.NOT_REPRODUCED
    fewer = {**clear, "pretrain_zero_weights": zero_table({1.0: [10, 20], 0.6: [10, 30]})}
    assert claims.more_data_more_sparsity(fewer)["verdict"] == claims.NOT_REPRODUCED


def test_bad_pretrain_settings_are_refused_in_one_line(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    cases = [({"model": {**raw["pretrain"]["model"], "num_attention_heads": 3}},
              "pretrain.model.hidden_size"),
             ({"fractions": [1.0, 0.601, 0.6]}, "pretrain.fractions"),
             ({"sparsities": [0.3, 0.5]}, "pretrain.sparsities"),
             ({"corpus": ["gutenberg"]}, "pretrain.corpus has 'gutenberg', which is neither")]
    for change, key in cases:
        bad = {**raw, "pretrain": {**raw["pretrain"], **change}}
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(bad, sort_keys=False))
        with pytest.raises(ParamsError, match=key.replace(".", r"\.")) as error:
            load_params(path)
        assert "\n" not in str(error.value)


def test_a_run_that_is_not_in_the_profile_is_refused(params):
    with pytest.raises(ParamsError, match="scratch-42 is not one of"):
        pretrain_run_settings(params, "scratch-42")


def test_a_missing_pretrained_checkpoint_names_the_build_command(tmp_path):
    from essential_sparsity.catalog import sources

    missing = tmp_path / "results" / "pretrain" / "scratch-100" / "step-480"
    with pytest.raises(sources.SourceError, match=r"build it with snakemake .*scratch-100"):
        sources.load_encoder(sources.Model("scratch-100", str(missing)))


def test_a_run_of_another_model_stops_the_pretraining_tables(tmp_path, params):
    scratch = next(iter(pretrain_models(params)))
    runs = write_runs(tmp_path, "bbc-news", {0.0: 90.0, 0.5: 88.0}, model=scratch)
    runs += write_runs(tmp_path, "bbc-news", {0.0: 90.0}, model="minilm-l6")
    with pytest.raises(ArtefactError, match="minilm-l6 are not pre-training runs of this profile"):
        pretrain_tables.downstream_table(pretrain_tables_settings(params), runs)
