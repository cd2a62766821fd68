"""The pruning scope of every supported family, on tiny models built from their configs: the six
components of the paper, in every block, and nothing else (no embeddings, heads, norms, biases)."""

from __future__ import annotations

import re

import pytest
import torch
from transformers import AutoConfig, AutoModel

from essential_sparsity.pruning.masks import apply_mask, checkpoint_weight, nm_mask
from essential_sparsity.pruning.scope import (
    COMPONENTS,
    FAMILIES,
    classify,
    scope_problem,
    scope_weights,
)

LAYERS = 2
TEXT = {"hidden_size": 16, "num_hidden_layers": LAYERS, "num_attention_heads": 2,
        "intermediate_size": 32, "vocab_size": 64}
IMAGE = {"hidden_size": 16, "num_hidden_layers": LAYERS, "num_attention_heads": 2,
         "intermediate_size": 32, "image_size": 8, "patch_size": 4}
DECODER = {**TEXT, "num_key_value_heads": 2}
# model_type -> tiny config; the gated FFNs have two ffn_in matrices per block (gate and up)
CONFIGS = {
    "bert": TEXT, "roberta": TEXT, "electra": {**TEXT, "embedding_size": 8},
    "deberta-v2": TEXT,
    "distilbert": {"dim": 16, "n_layers": LAYERS, "n_heads": 2, "hidden_dim": 32, "vocab_size": 64},
    "vit": IMAGE, "deit": IMAGE,
    "opt": {"hidden_size": 16, "num_hidden_layers": LAYERS, "num_attention_heads": 2,
            "ffn_dim": 32, "vocab_size": 64, "word_embed_proj_dim": 16},
    "gpt2": {"n_embd": 16, "n_layer": LAYERS, "n_head": 2, "n_inner": 32, "vocab_size": 64},
    "llama": DECODER, "mistral": DECODER, "qwen2": DECODER,
}
GATED = {"llama", "mistral", "qwen2"}


def tiny(model_type: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return AutoModel.from_config(AutoConfig.for_model(model_type, **CONFIGS[model_type]))


def test_every_family_has_a_tiny_model_here():
    assert set(CONFIGS) == set(FAMILIES)


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
def test_the_scope_is_the_six_block_matrices_of_every_layer(model_type):
    model = tiny(model_type)
    weights = scope_weights(model, list(COMPONENTS))
    found = sorted(classify(name, model_type) for name in weights)
    per_layer = [*COMPONENTS, "ffn_in"] if model_type in GATED else list(COMPONENTS)
    assert found == sorted((c, layer) for layer in range(LAYERS) for c in per_layer)
    params = dict(model.base_model.named_parameters())
    assert all(w.dim() == 2 and w.untyped_storage().data_ptr()
               == params[name.split(":")[0]].untyped_storage().data_ptr()
               for name, w in weights.items())  # the parameters themselves, or views of them
    covered = {name.split(":")[0] for name in weights}
    missed = [name for name, p in params.items()
              if p.dim() == 2 and re.search(r"\.\d+\.", name) and name not in covered]
    assert missed == []  # every matrix inside a block is one of the six components
    excluded = ("embed", "norm", "bias", "pooler", "classifier", "head", "project")
    assert not any(word in name.lower() for name in weights for word in excluded)


def test_a_subset_of_a_gated_decoders_components_selects_only_those():
    weights = scope_weights(tiny("llama"), ["query", "ffn_in"])
    assert {classify(name, "llama")[0] for name in weights} == {"query", "ffn_in"}
    assert len(weights) == 3 * LAYERS  # gate and up are both ffn_in


def test_a_family_without_a_scope_stops_with_one_line_naming_the_supported_ones():
    problem = scope_problem("bloom")
    assert "'bloom'" in problem and "roberta" in problem and "gpt2" in problem
    assert "\n" not in problem and scope_problem("deit") is None
    model = AutoModel.from_config(AutoConfig.for_model("bloom", hidden_size=16, n_layer=1,
                                                       n_head=2, vocab_size=64))
    with pytest.raises(ValueError, match="no pruning scope is defined for model_type 'bloom'"):
        scope_weights(model, list(COMPONENTS))


def test_gpt2s_fused_input_major_matrices_are_pruned_as_views_of_the_right_slices():
    """Conv1D stores [in, out] with Q, K, V side by side: the scope sees each as [out, in], so
    masking `query` zeroes the first third of c_attn's columns and nothing else."""
    model = tiny("gpt2")
    weights = scope_weights(model, list(COMPONENTS))
    fused = model.base_model.h[0].attn.c_attn.weight
    query = weights["h.0.attn.c_attn.weight:query"]
    assert fused.shape == (16, 48) and query.shape == (16, 16)
    assert weights["h.0.mlp.c_fc.weight"].shape == (32, 16)  # [out, in] like nn.Linear
    apply_mask({"q": query}, {"q": torch.zeros(16, 16, dtype=torch.bool)})
    assert (fused[:, :16] == 0).all() and (fused[:, 16:] != 0).all()
    state = {f"transformer.{k}": v for k, v in model.base_model.state_dict().items()}
    key = checkpoint_weight(state, "h.0.attn.c_attn.weight:key", "ckpt", "gpt2")
    assert torch.equal(key, fused[:, 16:32].T)
    # N:M groups run along a matrix's input: for GPT-2 that is the stored rows
    keep = nm_mask({"w": weights["h.0.mlp.c_fc.weight"]}, 2, 4)["w"]
    assert (keep.reshape(32, 4, 4).sum(-1) == 2).all()


def test_a_classifiers_scope_is_named_as_in_its_base_model(tiny_bert):
    weights = scope_weights(tiny_bert, list(COMPONENTS))
    suffixes = ["attention.self.query.weight", "attention.self.key.weight",
                "attention.self.value.weight", "attention.output.dense.weight",
                "intermediate.dense.weight", "output.dense.weight"]
    assert sorted(weights) == sorted(f"encoder.layer.{i}.{s}" for i in range(2) for s in suffixes)
    encoder_params = dict(tiny_bert.base_model.named_parameters())
    for name, w in weights.items():
        assert w is encoder_params[name] and w.dim() == 2
    excluded = ("embeddings", "LayerNorm", "bias", "pooler", "classifier")
    assert not any(word in name for name in weights for word in excluded)


def test_scope_subset_of_components(tiny_bert):
    weights = scope_weights(tiny_bert, ["query", "ffn_out"])
    assert sorted(weights) == sorted(
        [f"encoder.layer.{i}.attention.self.query.weight" for i in range(2)]
        + [f"encoder.layer.{i}.output.dense.weight" for i in range(2)])


def test_scope_rejects_unknown_or_empty_components(tiny_bert):
    with pytest.raises(ValueError, match="unknown scope components"):
        scope_weights(tiny_bert, ["query", "embeddings"])
    with pytest.raises(ValueError, match="matched no parameter"):
        scope_weights(tiny_bert, [])
