"""OPT (Figures 2 and 5 of the paper profile): the pruning scope finds exactly the six matrices
of every decoder block, masks survive fine-tuning, and the hub loaders read OPT offline from a
tiny facebook/opt-125m in the hub's cache layout (tests/hub_fixtures.py)."""

from __future__ import annotations

import pytest
import torch
from hub_fixtures import OPT_REPO, build_cache, opt_tokenizer, tiny_opt, write_opt_snapshot
from test_finetune import ROOT, SETTINGS, global_mask
from test_sources import use_cache

from essential_sparsity.catalog import sources
from essential_sparsity.config.params import load_params, prune_settings
from essential_sparsity.pruning import masks
from essential_sparsity.pruning.scope import COMPONENTS, classify, scope_weights
from essential_sparsity.stages.prune import prune
from essential_sparsity.training import finetune

# OPT's names for the six components, per decoder block
OPT_NAMES = {"query": "self_attn.q_proj", "key": "self_attn.k_proj", "value": "self_attn.v_proj",
             "attention_output": "self_attn.out_proj", "ffn_in": "fc1", "ffn_out": "fc2"}


@pytest.fixture(scope="module")
def opt_cache(tmp_path_factory):
    return build_cache(tmp_path_factory, "hf-opt", write_opt_snapshot)


@pytest.fixture
def hub(opt_cache, monkeypatch):
    use_cache(monkeypatch, opt_cache)


def sequence_classifier(num_labels: int = 3, seed: int = 0):
    """The fixture's OPT with a new classification head (random weights throughout)."""
    from transformers import OPTForSequenceClassification

    config = tiny_opt().config
    config.num_labels = num_labels
    torch.manual_seed(seed)
    return OPTForSequenceClassification(config)


@pytest.mark.parametrize("head", ["OPTModel", "OPTForSequenceClassification",
                                  "OPTForQuestionAnswering", "OPTForCausalLM"])
def test_scope_is_six_matrices_per_decoder_block(head):
    import transformers

    config = tiny_opt().config
    model = getattr(transformers, head)(config)
    weights = scope_weights(model, list(COMPONENTS))
    expected = {f"decoder.layers.{layer}.{OPT_NAMES[c]}.weight": (c, layer)
                for layer in range(config.num_hidden_layers) for c in COMPONENTS}
    assert {name: classify(name, "opt") for name in weights} == expected
    names = dict(model.base_model.named_parameters())
    assert {"decoder.project_in.weight", "decoder.project_out.weight"} <= set(names)
    assert all(weights[n] is names[n] for n in weights)


def test_scope_components_select_their_matrices():
    weights = scope_weights(tiny_opt(), ["ffn_in", "attention_output"])
    assert sorted(weights) == [f"decoder.layers.{i}.{m}.weight" for i in range(2)
                               for m in ("fc1", "self_attn.out_proj")]


def opt_batch(tokenizer, n: int = 8) -> dict[str, torch.Tensor]:
    texts = [("the cat sat " * (1 + i % 3)).strip() for i in range(n)]
    pairs = [f"on the mat {i}" for i in range(n)]
    batch = dict(tokenizer(texts, pairs, padding="longest", return_tensors="pt"))
    return {**batch, "labels": torch.arange(n) % 3}


def test_classifier_reads_the_last_token_that_is_not_padding():
    """A padded row scores as it does alone: OPT's pad id (1) is in config and tokenizer."""
    tokenizer, model = opt_tokenizer(), sequence_classifier().eval()
    assert tokenizer.pad_token_id == model.config.pad_token_id == 1
    batch = opt_batch(tokenizer)
    assert "token_type_ids" not in batch and (batch["attention_mask"] == 0).any()
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    for row in range(len(logits)):
        length = int(batch["attention_mask"][row].sum())
        alone = model(input_ids=batch["input_ids"][row:row + 1, :length]).logits
        torch.testing.assert_close(logits[row], alone[0])


def test_masked_fine_tuning_keeps_pruned_weights_zero():
    model = sequence_classifier()
    mask = global_mask(model)
    scoped = scope_weights(model, list(COMPONENTS))
    before = {k: w.detach().clone() for k, w in scoped.items()}
    data = finetune.encode(opt_tokenizer(), _frame(16), max_length=32)
    history = finetune.train(model, data, mask, SETTINGS, seed=0)
    assert history["steps"] == 4
    assert finetune.pruned_nonzero(model, mask) == 0
    for name, keep in mask.items():
        assert not keep.all() and keep.any()
        assert (scoped[name][keep] != before[name][keep]).float().mean() > 0.9, name


def _frame(n: int):
    import pandas as pd

    return pd.DataFrame({"text": [f"the cat sat {i}" for i in range(n)],
                         "text_pair": [f"on mat {i % 5}" for i in range(n)],
                         "label": [i % 3 for i in range(n)]})


def test_hub_loaders_read_opt_from_the_cache(hub):
    assert sources.builtin_location("opt-125m") == OPT_REPO
    saved = tiny_opt().model.state_dict()
    encoder = sources.load_encoder(sources.Model("opt-125m"))
    assert type(encoder).__name__ == "OPTModel"
    assert all(torch.equal(encoder.state_dict()[k], v) for k, v in saved.items())
    tokenizer = sources.load_tokenizer(sources.Model("opt-125m"))
    assert tokenizer.convert_ids_to_tokens(tokenizer("a b", "c")["input_ids"]) == [
        "</s>", "a", "Ġ", "b", "</s>", "c"]
    assert tokenizer.pad_token == "<pad>" and tokenizer.pad_token_id == 1
    classifier = sources.load_classifier(sources.Model("opt-125m"), num_labels=3, seed=0)
    assert type(classifier).__name__ == "OPTForSequenceClassification"
    assert classifier.config.pad_token_id == 1 and classifier.score.out_features == 3
    assert all(torch.equal(classifier.model.state_dict()[k], v) for k, v in saved.items())
    reader = sources.load_span_predictor(sources.Model("opt-125m"), seed=0)
    assert type(reader).__name__ == "OPTForQuestionAnswering"
    assert reader.qa_outputs.out_features == 2


def test_prune_stage_masks_the_hub_opt(hub, tmp_path):
    params = load_params(ROOT / "params.yaml", "paper")
    report = prune(prune_settings(params), sources.Model("opt-125m"), "omp-global", 0.5,
                   tmp_path / "m.safetensors")
    assert report["model_type"] == "opt" and report["source"] == OPT_REPO
    assert len(report["matrices"]) == 6 * 2
    assert report["pruned"] == masks.n_pruned(0.5, report["weights"])
    nm = prune(prune_settings(params), sources.Model("opt-125m"), "nm-2-4", 0.5,
               tmp_path / "nm.safetensors")
    assert nm["sparsity"] == pytest.approx(0.5)
