"""Which masks a configuration asks for: method names and sparsity levels.

No torch here, so the Snakefile can import it without slowing every dry run. The fine-tuning runs
of one model and task are: every grid method at every nonzero grid sparsity, the dense run
(sparsity 0, under the first grid method, whose mask keeps everything), every N:M pattern at its
own sparsity, and every LTH round; `curve_seeds` says which seeds each runs with. A causal LM's
one-shot runs (`llm_levels`) are every method at every sparsity and N:M pattern. The BERTs pre-
trained from scratch on data subsets (`pretrain_models`) are pruned by the first grid method at
`pretrain.sparsities` only, the vision transformers at `vision.sparsities` and every model on the
arithmetic tasks at `arithmetic.sparsities`.
"""

from __future__ import annotations

import math
import re

from .params import ParamsError, format_sparsity, tables_settings, vision_objective

LTH = "lth"
_NM = re.compile(r"nm-(\d+)-(\d+)")


def nm_method(n: int, m: int) -> str:
    """The method name of an N:M pattern in paths and tables: 2:4 -> nm-2-4."""
    return f"nm-{n}-{m}"


def parse_nm(method: str) -> tuple[int, int] | None:
    """(N, M) of an N:M method name, or None for every other method."""
    match = _NM.fullmatch(method)
    return (int(match.group(1)), int(match.group(2))) if match else None


def nm_sparsity(n: int, m: int) -> float:
    """N of every M kept: 1 - N/M of the weights are pruned."""
    return 1.0 - n / m


def nm_methods(params: dict, section: str = "prune") -> dict[str, float]:
    """The N:M method names of a section's nm_patterns, with their sparsities."""
    pairs = [tuple(map(int, pattern.split(":"))) for pattern in params[section]["nm_patterns"]]
    return {nm_method(n, m): nm_sparsity(n, m) for n, m in pairs}


def lth_sparsities(rate: float, max_sparsity: float) -> list[float]:
    """The sparsity after each round 1, 2, ...: round x rate of the original weights removed, the
    last one capped at the grid's largest sparsity."""
    rounds = math.ceil(max_sparsity / rate - 1e-9)
    return [round(min(r * rate, max_sparsity), 10) for r in range(1, rounds + 1)]


def lth_levels(params: dict) -> list[float]:
    """The LTH rounds' sparsities for this configuration, up to the grid's largest."""
    return lth_sparsities(params["lth"]["rate"], max(params["prune"]["sparsities"]))


def lth_round_settings(params: dict, round_: int) -> dict:
    """What one LTH round's mask depends on besides its inputs: the round's sparsity, the rate
    and the scope, and the seed of the runs it prunes (recorded with the mask)."""
    return {"sparsity": lth_levels(params)[round_ - 1], "rate": params["lth"]["rate"],
            "scope": params["prune"]["scope"], "seed": params["finetune"]["seeds"][0]}


def finetune_levels(params: dict) -> list[tuple[str, str]]:
    """(method, sparsity as spelled in paths) of every fine-tuning run of one model and task."""
    grid = params["prune"]["sparsities"]
    methods = params["prune"]["methods"]
    runs = [(methods[0], format_sparsity(0))]
    runs += [(method, format_sparsity(s)) for method in methods for s in grid if s > 0]
    runs += [(method, format_sparsity(s)) for method, s in nm_methods(params).items()]
    runs += [(LTH, format_sparsity(s)) for s in lth_levels(params)]
    return runs


def curve_seeds(params: dict, method: str, sparsity: str) -> list[int]:
    """The seeds of one run of Figure 2's curves (the sources' models and tasks):
    finetune.seeds, and finetune.repeats.seeds too for the methods `repeats` names and for the
    dense runs, the baseline of every curve, where seed noise matters most to a drop."""
    settings = params["finetune"]
    repeats = settings["repeats"]
    repeated = bool(repeats["methods"]) and (method in repeats["methods"] or float(sparsity) == 0)
    return sorted({*settings["seeds"], *(repeats["seeds"] if repeated else [])})


def llm_levels(params: dict) -> list[tuple[str, str]]:
    """(method, level) of every one-shot causal-LM run of one model: the dense run under the
    first method, every method at every nonzero sparsity, and every method at every N:M pattern
    (level nm-N-M: Wanda and SparseGPT choose N of M by their own scores)."""
    methods = params["llm"]["methods"]
    runs = [(methods[0], format_sparsity(0))]
    runs += [(method, format_sparsity(s)) for method in methods
             for s in params["llm"]["sparsities"] if s > 0]
    runs += [(method, level) for method in methods for level in nm_methods(params, "llm")]
    return runs


def pretrain_models(params: dict) -> dict[str, float]:
    """The models pre-trained from scratch, one per data fraction: scratch-100 saw all of the
    corpus, scratch-60 a random 60% of it."""
    return {f"scratch-{round(100 * f)}": f for f in params["pretrain"]["fractions"]}


def pretrain_run_settings(params: dict, model: str) -> dict:
    """What one pre-training run depends on: its data fraction, and the pretrain settings but the
    downstream ones (sparsities and fine-tuning come after it, threads and the near-zero threshold
    change no weight). Its job reruns, and a resume is refused, when these change."""
    fractions = pretrain_models(params)
    if model not in fractions:
        raise ParamsError(f"{model} is not one of this profile's pre-training runs "
                          f"({', '.join(fractions)}); check pretrain.fractions")
    downstream = ("fractions", "sparsities", "finetune", "threads", "near_zero")
    return {"fraction": fractions[model],
            "run": {k: v for k, v in params["pretrain"].items() if k not in downstream}}


def pretrain_tables_settings(params: dict) -> dict:
    """Figure 8's tables: those of any runs, the scope and near-zero threshold the checkpoints'
    zero weights are counted in, and each pre-trained model's data fraction."""
    return {**tables_settings(params), "scope": params["prune"]["scope"],
            "near_zero": params["pretrain"]["near_zero"], "fractions": pretrain_models(params)}


def vision_pretrain_settings(params: dict, model: str) -> dict:
    """The vision.pretrain settings a vision pre-training run depends on (threads change no
    weight), and the model's objective."""
    if model not in vision_pretrained(params):
        raise ParamsError(f"{model} is not pre-trained by this profile (vision.models: "
                          f"{', '.join(params['vision']['models'])})")
    return {**{k: v for k, v in params["vision"]["pretrain"].items() if k != "threads"},
            "objective": vision_objective(params, model)}


def _first_method_at(params: dict, sparsities: list[float]) -> list[tuple[str, str]]:
    """(method, sparsity) of runs pruned by the first grid method (OMP) at each sparsity,
    sparsity 0 being the dense run."""
    method = params["prune"]["methods"][0]
    return [(method, format_sparsity(s)) for s in sparsities]


def pretrain_levels(params: dict) -> list[tuple[str, str]]:
    """(method, sparsity) of every fine-tuning run of a pre-trained-from-scratch model."""
    return _first_method_at(params, params["pretrain"]["sparsities"])


def arithmetic_levels(params: dict) -> list[tuple[str, str]]:
    """(method, sparsity) of every fine-tuning run of a model on an arithmetic task (Figure 4)."""
    return _first_method_at(params, params["arithmetic"]["sparsities"])



def vision_pretrained(params: dict) -> list[str]:
    """The vision models of this profile that its own pre-training stage makes."""
    from ..catalog.builtin import VISION_MODELS

    return [m for m in params["vision"]["models"]
            if VISION_MODELS.get(m, {}).get("pretrained_here")]


def vision_levels(params: dict) -> list[tuple[str, str]]:
    """(method, sparsity) of every fine-tuning run of a vision model."""
    return _first_method_at(params, params["vision"]["sparsities"])
