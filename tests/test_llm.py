"""Causal-LM one-shot pruning (Figure 11): Wanda and SparseGPT hit the requested sparsity and N:M
pattern exactly, SparseGPT reconstructs a layer's output better than magnitude pruning, the
zero-shot evaluation and the corpus behave, and Vicuna's loader reads a hub-shaped fixture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hub_fixtures import (
    MMLU_SPLITS,
    VICUNA_REPO,
    tiny_llama,
    write_mmlu_snapshot,
    write_vicuna_snapshot,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from test_sources import use_cache

from essential_sparsity.catalog import sources
from essential_sparsity.config.params import llm_table_settings, load_params
from essential_sparsity.data import corpus
from essential_sparsity.evaluation import llm_eval, tables
from essential_sparsity.pruning import calibrated, masks
from essential_sparsity.pruning.scope import COMPONENTS, scope_weights
from essential_sparsity.pruning.sharded import load_sharded_mask
from essential_sparsity.records.io import ArtefactError
from essential_sparsity.stages import llm as llm_stages

ROOT = Path(__file__).resolve().parents[1]


def calibration_ids(model, sequences=6, tokens=24, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, model.config.vocab_size, (sequences, tokens), generator=generator)


def correlated_inputs(tokens: int, features: int, seed: int) -> torch.Tensor:
    """Inputs whose features are correlated, as a real layer's are: what SparseGPT exploits."""
    generator = torch.Generator().manual_seed(seed)
    latent = torch.randn(tokens, features // 4, generator=generator)
    mixing = torch.randn(features // 4, features, generator=generator)
    return latent @ mixing + 0.1 * torch.randn(tokens, features, generator=generator)


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 12), groups=st.integers(1, 8), sparsity=st.floats(0, 0.95),
       method=st.sampled_from(calibrated.CALIBRATED), seed=st.integers(0, 2**16))
def test_unstructured_pruners_remove_exactly_round_s_n(rows, groups, sparsity, method, seed):
    cols = 8 * groups
    weight = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))
    x = correlated_inputs(64, cols, seed)
    if method == "wanda":
        keep, pruned = calibrated.wanda(weight, (x * x).sum(0), sparsity)
    else:
        keep, pruned = calibrated.sparsegpt(weight, 2 * x.T @ x / 64, sparsity, block_size=8)
    assert int((~keep).sum()) == masks.n_pruned(sparsity, rows * cols)
    assert torch.all(pruned[~keep] == 0)
    if method == "wanda":  # weights are only masked, never changed
        assert torch.equal(pruned[keep], weight[keep])


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 10), cols=st.integers(1, 40), levels=st.integers(1, 5),
       sparsity=st.floats(0, 0.99), seed=st.integers(0, 2**16))
def test_wanda_prunes_the_lowest_scores_of_each_row_ties_to_the_earlier_column(
        rows, cols, levels, sparsity, seed):
    """The partition-based selection against the plain definition, a stable sort of each row;
    few distinct values make ties the rule, not the exception."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randint(0, levels, (rows, cols), generator=generator).float()
    keep, _ = calibrated.wanda(weight, torch.ones(cols), sparsity)
    counts = calibrated._row_counts(rows, cols, sparsity)
    order = torch.argsort(weight.abs(), dim=1, stable=True)
    expected = torch.ones(rows, cols, dtype=torch.bool)
    for row in range(rows):
        expected[row, order[row, :counts[row]]] = False
    assert torch.equal(keep, expected)


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 8), groups=st.integers(1, 6),
       pattern=st.sampled_from([(1, 4), (2, 4), (2, 8), (4, 8), (3, 4)]),
       method=st.sampled_from(calibrated.CALIBRATED), seed=st.integers(0, 2**16))
def test_nm_pruners_keep_exactly_n_of_every_m(rows, groups, pattern, method, seed):
    n, m = pattern
    cols = 8 * groups
    weight = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))
    x = correlated_inputs(64, cols, seed)
    if method == "wanda":
        keep, pruned = calibrated.wanda(weight, (x * x).sum(0), 0.0, (n, m))
    else:
        keep, pruned = calibrated.sparsegpt(weight, 2 * x.T @ x / 64, 0.0, (n, m), block_size=16)
    assert torch.all(keep.reshape(-1, m).sum(1) == n)
    assert torch.all(pruned[~keep] == 0)


@pytest.mark.parametrize("method", calibrated.CALIBRATED)
@pytest.mark.parametrize("nm", [None, (2, 4)])
def test_calibrated_prune_on_a_tiny_llama(method, nm):
    model = tiny_llama(vocab_size=64)
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    mask = calibrated.calibrated_prune(model, calibration_ids(model), list(COMPONENTS), method,
                                      0.5, nm, block_size=16)
    weights = scope_weights(model, list(COMPONENTS))
    assert set(mask) == set(weights)
    for name, keep in mask.items():
        assert int((~keep).sum()) == masks.n_pruned(0.5, keep.numel())
        assert torch.all(weights[name][~keep] == 0)
        if nm:
            assert torch.all(keep.reshape(-1, 4).sum(1) == 2)
    out_of_scope = [k for k in dense if k.removeprefix("model.") not in mask]
    assert out_of_scope and all(torch.equal(dense[k], model.state_dict()[k]) for k in out_of_scope)


def first_block_inputs(model, ids) -> dict[str, torch.Tensor]:
    """The inputs each in-scope linear of the first block sees in the dense model."""
    block = model.base_model.layers[0]
    linears = calibrated._scoped_linears(block, 0, "llama", list(COMPONENTS))
    seen = {}

    def recorder(name):
        def hook(_module, args, _output):
            seen[name] = args[0].reshape(-1, args[0].shape[-1])
        return hook

    hooks = [linear.register_forward_hook(recorder(name)) for name, linear in linears.items()]
    with torch.no_grad():
        model(ids, use_cache=False)
    for hook in hooks:
        hook.remove()
    return seen


def test_sparsegpt_reconstructs_layer_outputs_better_than_magnitude():
    """The issue's check: at the same sparsity, SparseGPT's error on each layer's output (on the
    calibration inputs) is below OMP's, because it updates the weights it keeps."""
    dense = tiny_llama(vocab_size=64)
    ids = calibration_ids(dense, sequences=8, tokens=32)
    inputs = first_block_inputs(dense, ids)
    pruned = tiny_llama(vocab_size=64)
    calibrated.calibrated_prune(pruned, ids, list(COMPONENTS), "sparsegpt", 0.5, block_size=16)
    before = scope_weights(dense, list(COMPONENTS))
    after = scope_weights(pruned, list(COMPONENTS))
    omp = masks.omp_layerwise(before, [0.5])[0.5]
    for name, x in inputs.items():
        w = before[name].detach()
        sparsegpt_error = torch.linalg.norm(x @ (w - after[name].detach()).T)
        omp_error = torch.linalg.norm(x @ (w - w * omp[name]).T)
        assert sparsegpt_error < omp_error, name


def test_perplexity_and_multiple_choice_on_a_tiny_model():
    model = tiny_llama(vocab_size=64)
    windows = calibration_ids(model, sequences=3, tokens=16)
    result = llm_eval.perplexity(model, windows, batch_size=2)
    assert result["tokens"] == 3 * 15
    assert result["perplexity"] == pytest.approx(torch.tensor(result["loss"]).exp().item())
    assert result["per_window"]["tokens"] == [15, 15, 15]
    assert sum(result["per_window"]["loss"]) / 3 == pytest.approx(result["loss"])
    alone = llm_eval.perplexity(model, windows[1:2], batch_size=1)
    assert alone["loss"] == pytest.approx(result["per_window"]["loss"][1])

    class Tokenizer:  # characters as tokens: enough to exercise batching and scoring
        pad_token_id = 0
        eos_token = None

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [1 + ord(c) % 63 for c in text]}

    items = [{"word": f"w{i}", "choices": ["a b", "longer answer", "c", "dd"], "answer": i % 4}
             for i in range(5)]
    scored = llm_eval.multiple_choice(model, Tokenizer(), items, batch_size=3)
    alone = llm_eval.multiple_choice(model, Tokenizer(), items, batch_size=1)
    # padding and batching do not change any score's winner
    answers = {k: v for k, v in scored["per_example"].items() if not k.startswith("choice_")}
    assert answers == {k: v for k, v in alone["per_example"].items()
                       if not k.startswith("choice_")}
    assert scored["accuracy"] == alone["accuracy"]
    assert scored["chance"] == 25.0 and 0 <= scored["accuracy"] <= 100
    per_example = scored["per_example"]
    assert per_example["example"] == list(range(5))
    assert per_example["answer"] == [i % 4 for i in range(5)]
    for j in range(4):
        assert per_example[f"choice_{j}"] == pytest.approx(alone["per_example"][f"choice_{j}"])
    for row in range(5):
        choices = [per_example[f"choice_{j}"][row] for j in range(4)]
        assert per_example["predicted"][row] == choices.index(max(choices))
        assert per_example["score"][row] == 100 * (per_example["predicted"][row] == row % 4)
    assert sum(per_example["score"]) / 5 == pytest.approx(scored["accuracy"])
    with pytest.raises(ValueError, match="fewer than"):
        llm_eval.token_windows(Tokenizer(), ["short"], sequences=2, tokens=16)


def test_play_paragraphs_keep_only_spoken_text():
    text = ("ACT I.\n\nSCENE 1. A room.\n\n[Enter HELENA.]\n\nCOUNTESS.\nIn delivering my son\n"
            "from me, I bury a second husband.\n\nBERTRAM.\nAnd I in going, [Aside] madam.\n")
    assert corpus._play_paragraphs(text) == [
        "In delivering my son from me, I bury a second husband.", "And I in going, madam."]


def test_corpus_split_is_seeded_and_disjoint():
    docs = [f"document number {i}" for i in range(50)]
    first = corpus.split_documents(docs, 0.2, seed=3)
    assert first == corpus.split_documents(docs, 0.2, seed=3)
    assert len(first["heldout"]) == 10
    assert sorted(first["heldout"] + first["train"]) == sorted(docs)


def test_definition_questions_have_one_right_answer_of_the_same_part_of_speech():
    rows = [{"pos": pos, "lemma": f"{pos}{i}", "definition": f"meaning {i} of a {pos}"}
            for pos in ("noun", "verb") for i in range(12)]
    rows.append({"pos": "noun", "lemma": "noun0", "definition": "a second sense"})
    items = corpus.definition_questions(rows, questions=10, choices=4, seed=1)
    definitions = {(r["lemma"], r["definition"]) for r in rows}
    for item in items:
        assert item["word"] != "noun0"  # two senses: skipped
        assert len(set(item["choices"])) == 4
        assert (item["word"], item["choices"][item["answer"]]) in definitions
        same_pos = {r["definition"] for r in rows if r["pos"] == item["pos"]}
        assert set(item["choices"]) <= same_pos


def test_packed_masks_round_trip_and_reject_corruption(tmp_path):
    mask = {"layers.0.mlp.down_proj.weight": torch.rand(5, 13) > 0.5,
            "layers.0.self_attn.q_proj.weight": torch.rand(3, 3) > 0.2}
    path = tmp_path / "mask.safetensors"
    masks.save_mask(path, mask, {"model_type": "llama"}, packed=True)
    loaded = masks.load_mask(path)
    assert all(torch.equal(loaded[name], keep) for name, keep in mask.items())
    assert json.loads(path.with_suffix(".json").read_text())["weights"] == 65 + 9

    from safetensors.torch import save_file
    save_file({"layers.0.self_attn.q_proj.weight": torch.zeros(1, dtype=torch.uint8)},
              str(path), metadata={"packed_shapes": json.dumps(
                  {"layers.0.self_attn.q_proj.weight": [3, 3]})})
    with pytest.raises(ArtefactError, match="not the bits of 9 weights"):
        masks.load_mask(path)


def test_zero_shot_table_measures_drops_from_the_dense_run_with_their_intervals(tmp_path):
    """Wanda gets 15 of the dense run's 60 right answers (of 100) wrong and none right that
    were wrong: every resample of the questions drops it by 15 points or a little more or less,
    around 15; the N:M run, the same answers as dense, drops by exactly 0 in every one."""
    dense_right = np.arange(100) < 60
    runs = [("omp-global", "0", "", dense_right, 20.0),
            ("wanda", "0.5", "", dense_right & (np.arange(100) >= 15), 40.0),
            ("wanda", "nm-2-4", "2:4", dense_right, 30.0)]
    paths = []
    for method, level, pattern, right, ppl in runs:
        record = {"model": "m", "method": method, "level": level,
                  "sparsity": 0.5 if pattern else float(level), "pattern": pattern,
                  "scope_sparsity": 0.5, "perplexity": ppl, "heldout_loss": 1.0,
                  "benchmark": "definitions", "accuracy": 100.0 * right.mean(), "questions": 100,
                  "chance": 25.0, "prune_time_s": 1.0, "wall_time_s": 2.0}
        run = tmp_path / f"{method}-{level}"
        run.mkdir()
        paths.append(run / "metrics.json")
        paths[-1].write_text(json.dumps(record))
        pd.DataFrame({"score": 100.0 * right}).to_csv(run / "predictions.csv", index=False)
    settings = llm_table_settings(load_params(ROOT / "params.yaml", "smoke"))
    table = tables.zero_shot_table(settings, paths).set_index(["method", "pattern"])
    wanda = table.loc[("wanda", "")]
    assert wanda["accuracy_drop"] == 15.0 and wanda["perplexity_ratio"] == 2.0
    assert 8 < wanda["accuracy_drop_low"] < 15 < wanda["accuracy_drop_high"] < 22
    nm = table.loc[("wanda", "2:4")]
    assert (nm["accuracy_drop_low"], nm["accuracy_drop_high"]) == (0, 0)
    with pytest.raises(ArtefactError, match="no dense run"):
        tables.zero_shot_table(settings, paths[1:])


def test_vicuna_loads_from_a_hub_shaped_fixture(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    saved = write_vicuna_snapshot(cache, tmp_path / "staging")
    use_cache(monkeypatch, cache)
    location = sources.causal_lm_location("vicuna-7b", None)
    assert location == VICUNA_REPO
    model, tokenizer = sources.load_causal_lm(location)
    assert torch.equal(model.state_dict()["model.layers.1.mlp.down_proj.weight"],
                       saved.state_dict()["model.layers.1.mlp.down_proj.weight"])
    assert len(scope_weights(model, list(COMPONENTS))) == 2 * 7
    assert tokenizer("the cat")["input_ids"]


def test_missing_sources_name_the_fix(tmp_path, monkeypatch):
    with pytest.raises(sources.SourceError, match="snakemake"):
        sources.causal_lm_location("smollm2-135m", tmp_path / "not-built")
    with pytest.raises(sources.SourceError, match="unknown"):
        sources.causal_lm_location("gpt-5", None)
    monkeypatch.setattr(corpus, "WORDNET_DIR", tmp_path)
    with pytest.raises(sources.SourceError, match="wordnet-base"):
        corpus.wordnet_definitions()


def test_sharded_omp_of_a_saved_checkpoint_matches_in_memory_omp(tmp_path, params):
    """The CLI path for a 7B/13B checkpoint, on a tiny Llama saved in several shards: the same
    masks as global OMP in memory (random weights have no ties, so order cannot matter)."""
    model = tiny_llama(vocab_size=64)
    model.save_pretrained(tmp_path / "ckpt", max_shard_size="20KB")
    assert len(list((tmp_path / "ckpt").glob("*.safetensors"))) > 2
    written = llm_stages.prune_sharded(params, tmp_path / "ckpt", [0.3, 0.6], tmp_path / "masks")
    expected = masks.omp_global(scope_weights(model, params["llm"]["scope"]), [0.3, 0.6])
    for sparsity, directory in written.items():
        found = {k.removeprefix("model."): v for k, v in load_sharded_mask(directory).items()}
        assert found.keys() == expected[sparsity].keys()
        assert all(torch.equal(found[k], expected[sparsity][k]) for k in found)


def test_mmlu_runs_through_lm_eval_on_a_hub_shaped_fixture(tmp_path, monkeypatch):
    """The paper profile's benchmark: every subject of lm-evaluation-harness's MMLU, offline,
    from a cache laid out like the hub's cais/mmlu, scored per category."""
    cache = tmp_path / "hub"
    subjects = llm_eval.mmlu_subjects()
    assert len(subjects) == 57
    assert set(subjects.values()) == {"stem", "humanities", "social_sciences", "other"}
    write_mmlu_snapshot(cache, tmp_path / "staging", list(subjects))
    model = write_vicuna_snapshot(cache, tmp_path / "staging-model")
    use_cache(monkeypatch, cache)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    _, tokenizer = sources.load_causal_lm(VICUNA_REPO)
    result = llm_eval.mmlu(model, tokenizer, batch_size=16, num_fewshot=1)
    assert result["questions"] == 57 * MMLU_SPLITS["test"]
    assert set(result["categories"]) == set(subjects.values())
    assert 0 <= result["accuracy"] <= 100
    per_example = result["per_example"]
    assert len(per_example["score"]) == result["questions"]
    assert sorted(set(per_example["subject"])) == sorted(subjects)
    assert sum(per_example["score"]) / result["questions"] == pytest.approx(result["accuracy"])
    for row in range(result["questions"]):
        choices = [per_example[f"choice_{j}"][row] for j in range(4)]
        assert per_example["predicted"][row] == choices.index(max(choices))
        assert per_example["correct"][row] == (per_example["predicted"][row]
                                               == per_example["answer"][row])


def test_mmlu_missing_from_the_cache_names_the_download(tmp_path, monkeypatch):
    use_cache(monkeypatch, tmp_path / "hub")
    with pytest.raises(sources.SourceError, match="hf download --repo-type dataset cais/mmlu"):
        llm_eval.mmlu(tiny_llama(), None, batch_size=1, num_fewshot=0)


def test_calibrated_pruning_refuses_a_decoder_that_is_not_llama_style():
    from transformers import GPT2Config, GPT2LMHeadModel

    from essential_sparsity.pruning.calibrated import calibrated_prune

    model = GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=64))
    with pytest.raises(ValueError, match=r"wanda runs block by block on Llama-style decoders .*"
                                         r"not on 'gpt2': prune it with omp-global"):
        calibrated_prune(model, torch.zeros(1, 4, dtype=torch.long), ["query"], "wanda", 0.5)
