"""The pruning scope: which weight matrices one-shot magnitude pruning may remove weights from.

As in the paper's code, the scope is the transformer blocks' attention (Q, K, V, output) and
feed-forward (in, out) weight matrices, of encoders (BERT, ViT) and decoders (OPT, Llama) alike.
Embeddings, pooler, classifier or LM head, LayerNorm and biases are never pruned, and every
sparsity is reported over the scope only. Names are those of the base model (`model.base_model`),
so one mask fits the bare model and every head put on top of it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the catalog checks a model's scope before any job, without torch
    import torch

COMPONENTS = ("query", "key", "value", "attention_output", "ffn_in", "ffn_out")

# layout -> component -> pattern over base-model parameter names, group 1 = layer index. A layout
# is how one family of architectures names its block matrices; `FAMILIES` maps every model_type
# that shares it (config.json's `model_type`) to it.
LAYOUTS: dict[str, dict[str, str]] = {
    "bert": {
        "query": r"encoder\.layer\.(\d+)\.attention\.self\.query\.weight",
        "key": r"encoder\.layer\.(\d+)\.attention\.self\.key\.weight",
        "value": r"encoder\.layer\.(\d+)\.attention\.self\.value\.weight",
        "attention_output": r"encoder\.layer\.(\d+)\.attention\.output\.dense\.weight",
        "ffn_in": r"encoder\.layer\.(\d+)\.intermediate\.dense\.weight",
        "ffn_out": r"encoder\.layer\.(\d+)\.output\.dense\.weight",
    },
    "deberta-v2": {
        "query": r"encoder\.layer\.(\d+)\.attention\.self\.query_proj\.weight",
        "key": r"encoder\.layer\.(\d+)\.attention\.self\.key_proj\.weight",
        "value": r"encoder\.layer\.(\d+)\.attention\.self\.value_proj\.weight",
        "attention_output": r"encoder\.layer\.(\d+)\.attention\.output\.dense\.weight",
        "ffn_in": r"encoder\.layer\.(\d+)\.intermediate\.dense\.weight",
        "ffn_out": r"encoder\.layer\.(\d+)\.output\.dense\.weight",
    },
    "distilbert": {
        "query": r"transformer\.layer\.(\d+)\.attention\.q_lin\.weight",
        "key": r"transformer\.layer\.(\d+)\.attention\.k_lin\.weight",
        "value": r"transformer\.layer\.(\d+)\.attention\.v_lin\.weight",
        "attention_output": r"transformer\.layer\.(\d+)\.attention\.out_lin\.weight",
        "ffn_in": r"transformer\.layer\.(\d+)\.ffn\.lin1\.weight",
        "ffn_out": r"transformer\.layer\.(\d+)\.ffn\.lin2\.weight",
    },
    # Vision transformers, as transformers names them since version 5.
    "vit": {
        "query": r"layers\.(\d+)\.attention\.q_proj\.weight",
        "key": r"layers\.(\d+)\.attention\.k_proj\.weight",
        "value": r"layers\.(\d+)\.attention\.v_proj\.weight",
        "attention_output": r"layers\.(\d+)\.attention\.o_proj\.weight",
        "ffn_in": r"layers\.(\d+)\.mlp\.fc1\.weight",
        "ffn_out": r"layers\.(\d+)\.mlp\.fc2\.weight",
    },
    # OPT decoders (Figures 2 and 5). OPT-350M's project_in/project_out (between its 512-wide
    # embeddings and 1024-wide blocks) sit outside the blocks, like the embeddings: not in scope.
    "opt": {
        "query": r"decoder\.layers\.(\d+)\.self_attn\.q_proj\.weight",
        "key": r"decoder\.layers\.(\d+)\.self_attn\.k_proj\.weight",
        "value": r"decoder\.layers\.(\d+)\.self_attn\.v_proj\.weight",
        "attention_output": r"decoder\.layers\.(\d+)\.self_attn\.out_proj\.weight",
        "ffn_in": r"decoder\.layers\.(\d+)\.fc1\.weight",
        "ffn_out": r"decoder\.layers\.(\d+)\.fc2\.weight",
    },
    # Llama-style decoders: the gated FFN's gate and up projections both read the block's input,
    # so both are ffn_in.
    "llama": {
        "query": r"layers\.(\d+)\.self_attn\.q_proj\.weight",
        "key": r"layers\.(\d+)\.self_attn\.k_proj\.weight",
        "value": r"layers\.(\d+)\.self_attn\.v_proj\.weight",
        "attention_output": r"layers\.(\d+)\.self_attn\.o_proj\.weight",
        "ffn_in": r"layers\.(\d+)\.mlp\.(?:gate|up)_proj\.weight",
        "ffn_out": r"layers\.(\d+)\.mlp\.down_proj\.weight",
    },
}

# model_type -> layout. DINO checkpoints are model_type vit; SmolLM2 and Vicuna are llama. GPT-2 is
# not here: it stores its weights input-major (Conv1D) and fuses Q, K and V in one matrix, which
# the N:M groups (along the input of a row-major weight) and the per-component reports assume away.
FAMILIES: dict[str, str] = {
    "bert": "bert", "roberta": "bert", "electra": "bert", "deberta-v2": "deberta-v2",
    "distilbert": "distilbert", "vit": "vit", "deit": "vit",
    "opt": "opt", "llama": "llama", "mistral": "llama", "qwen2": "llama",
}


def scope_problem(model_type: str | None) -> str | None:
    """Why a model_type has no pruning scope (None when it has one): one line for the user."""
    if model_type in FAMILIES:
        return None
    return (f"no pruning scope is defined for model_type {model_type!r} (supported: "
            f"{', '.join(FAMILIES)}); add its layout to scope.LAYOUTS and FAMILIES")


def classify(name: str, model_type: str) -> tuple[str, int] | None:
    """(component, layer) of a parameter name, or None when it is outside every component."""
    problem = scope_problem(model_type)
    if problem:
        raise ValueError(problem)
    for component, pattern in LAYOUTS[FAMILIES[model_type]].items():
        match = re.fullmatch(pattern, name)
        if match:
            return component, int(match.group(1))
    return None


def scope_weights(model: torch.nn.Module, components: list[str]) -> dict[str, torch.Tensor]:
    """The in-scope weight matrices of `model`'s encoder, by name, in the model's own order."""
    encoder = model.base_model
    model_type = encoder.config.model_type
    problem = scope_problem(model_type)
    if problem:
        raise ValueError(problem)
    unknown = set(components) - set(COMPONENTS)
    if unknown:
        raise ValueError(f"unknown scope components {sorted(unknown)} (allowed: {COMPONENTS})")
    weights = {}
    for name, param in encoder.named_parameters():
        where = classify(name, model_type)
        if where and where[0] in components:
            weights[name] = param
    if not weights:
        raise ValueError(f"scope {components} matched no parameter of this {model_type} model")
    return weights
