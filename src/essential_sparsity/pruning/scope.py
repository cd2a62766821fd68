"""The pruning scope: which weight matrices one-shot magnitude pruning may remove weights from.

As in the paper's code, the scope is the transformer blocks' attention (Q, K, V, output) and
feed-forward (in, out) weight matrices, of encoders (BERT, ViT) and decoders (OPT, GPT-2, Llama)
alike.
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
    # GPT-2 stores its block matrices input-major (transformers' Conv1D, [in, out]) and fuses Q, K
    # and V in one; its scope is views of them (`views`): [out, in] like every other family's, the
    # fused matrix split in three and named `<parameter>:<component>`.
    "gpt2": {
        "query": r"h\.(\d+)\.attn\.c_attn\.weight:query",
        "key": r"h\.(\d+)\.attn\.c_attn\.weight:key",
        "value": r"h\.(\d+)\.attn\.c_attn\.weight:value",
        "attention_output": r"h\.(\d+)\.attn\.c_proj\.weight",
        "ffn_in": r"h\.(\d+)\.mlp\.c_fc\.weight",
        "ffn_out": r"h\.(\d+)\.mlp\.c_proj\.weight",
    },
    "llama": {
        "query": r"layers\.(\d+)\.self_attn\.q_proj\.weight",
        "key": r"layers\.(\d+)\.self_attn\.k_proj\.weight",
        "value": r"layers\.(\d+)\.self_attn\.v_proj\.weight",
        "attention_output": r"layers\.(\d+)\.self_attn\.o_proj\.weight",
        "ffn_in": r"layers\.(\d+)\.mlp\.(?:gate|up)_proj\.weight",
        "ffn_out": r"layers\.(\d+)\.mlp\.down_proj\.weight",
    },
}

# model_type -> layout. DINO checkpoints are model_type vit; SmolLM2 and Vicuna are llama.
FAMILIES: dict[str, str] = {
    "bert": "bert", "roberta": "bert", "electra": "bert", "deberta-v2": "deberta-v2",
    "distilbert": "distilbert", "vit": "vit", "deit": "vit",
    "opt": "opt", "gpt2": "gpt2", "llama": "llama", "mistral": "llama", "qwen2": "llama",
}
CAUSAL_LM_FAMILIES = ("opt", "gpt2", "llama")  # layouts of decoders Figure 11 can prune
INPUT_MAJOR = {"gpt2"}  # layouts whose block matrices are stored [in, out]
FUSED_QKV = re.compile(r"(?:.*\.)?c_attn\.weight")


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


def views(name: str, tensor: torch.Tensor, model_type: str) -> dict[str, torch.Tensor]:
    """The matrices of the scope a parameter holds, by name, as [out, in] views of its storage:
    masking a view masks the parameter. Most parameters are one matrix as they are; an
    input-major layout's are transposed and a fused Q, K, V split in three, so pruning, N:M
    groups (along the input) and per-component reports see every family alike."""
    if FAMILIES.get(model_type) not in INPUT_MAJOR or tensor.dim() != 2:
        return {name: tensor}
    rows = tensor.T
    if FUSED_QKV.fullmatch(name):
        width = rows.shape[0] // 3  # narrow, not chunk: a single view may be written in place
        return {f"{name}:{part}": rows.narrow(0, i * width, width)
                for i, part in enumerate(("query", "key", "value"))}
    return {name: rows}


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
    for parameter, param in encoder.named_parameters():
        for name, matrix in views(parameter, param, model_type).items():
            where = classify(name, model_type)
            if where and where[0] in components:
                weights[name] = matrix
    if not weights:
        raise ValueError(f"scope {components} matched no parameter of this {model_type} model")
    return weights
