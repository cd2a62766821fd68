"""The pruning scope: which weight matrices one-shot magnitude pruning may remove weights from.

As in the paper's code, the scope is the transformer blocks' attention (Q, K, V, output) and
feed-forward (in, out) weight matrices, of encoders (BERT, ViT) and decoders (OPT, Llama) alike.
Embeddings, pooler, classifier or LM head, LayerNorm and biases are never pruned, and every
sparsity is reported over the scope only. Names are those of the base model (`model.base_model`),
so one mask fits the bare model and every head put on top of it."""

from __future__ import annotations

import re

import torch

COMPONENTS = ("query", "key", "value", "attention_output", "ffn_in", "ffn_out")

# model_type -> component -> pattern over encoder parameter names, group 1 = layer index
PATTERNS: dict[str, dict[str, str]] = {
    "bert": {
        "query": r"encoder\.layer\.(\d+)\.attention\.self\.query\.weight",
        "key": r"encoder\.layer\.(\d+)\.attention\.self\.key\.weight",
        "value": r"encoder\.layer\.(\d+)\.attention\.self\.value\.weight",
        "attention_output": r"encoder\.layer\.(\d+)\.attention\.output\.dense\.weight",
        "ffn_in": r"encoder\.layer\.(\d+)\.intermediate\.dense\.weight",
        "ffn_out": r"encoder\.layer\.(\d+)\.output\.dense\.weight",
    },
    # Vision transformers (ViT, DINO), as transformers names them since version 5.
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
    # Llama-style decoders (SmolLM2, Vicuna): the gated FFN's gate and up projections both read
    # the block's input, so both are ffn_in.
    "llama": {
        "query": r"layers\.(\d+)\.self_attn\.q_proj\.weight",
        "key": r"layers\.(\d+)\.self_attn\.k_proj\.weight",
        "value": r"layers\.(\d+)\.self_attn\.v_proj\.weight",
        "attention_output": r"layers\.(\d+)\.self_attn\.o_proj\.weight",
        "ffn_in": r"layers\.(\d+)\.mlp\.(?:gate|up)_proj\.weight",
        "ffn_out": r"layers\.(\d+)\.mlp\.down_proj\.weight",
    },
}


def classify(name: str, model_type: str) -> tuple[str, int] | None:
    """(component, layer) of a parameter name, or None when it is outside every component."""
    for component, pattern in PATTERNS[model_type].items():
        match = re.fullmatch(pattern, name)
        if match:
            return component, int(match.group(1))
    return None


def scope_weights(model: torch.nn.Module, components: list[str]) -> dict[str, torch.Tensor]:
    """The in-scope weight matrices of `model`'s encoder, by name, in the model's own order."""
    encoder = model.base_model
    model_type = encoder.config.model_type
    if model_type not in PATTERNS:
        raise ValueError(f"no pruning scope is defined for model_type {model_type!r} "
                         f"(defined: {', '.join(PATTERNS)})")
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
