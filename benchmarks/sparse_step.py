"""Sparse fine-tuning step against a dense one: what re-masking after every optimizer step costs.

The packaged MiniLM with a 5-class head, one batch of 32 BBC News texts x 32 tokens, the AdamW
(fused) and bf16 autocast that `finetune.train` uses, one torch thread (the default profile's
`finetune.threads`). The sparse step is the dense step plus `masks.apply_mask` over the scope with
a 50% global OMP mask, exactly as in `finetune.train`. Dense and sparse steps alternate (two
models, two optimizers, the same batch), so machine noise hits both alike.

    python -m benchmarks.sparse_step            # prints a markdown report
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from benchmarks.common import median_seconds
from essential_sparsity.catalog import sources
from essential_sparsity.config.params import finetune_settings, load_params
from essential_sparsity.pruning import masks
from essential_sparsity.pruning.scope import scope_weights
from essential_sparsity.training import finetune

ROOT = Path(__file__).resolve().parents[1]
MODEL = "minilm-l6"
TASK = "bbc-news"  # 5 topics: the head of load_classifier(MODEL, 5, ...)
SPARSITY = 0.5
BATCH, TOKENS = 32, 32
TARGET_OVERHEAD = 0.03


def real_batch(tokenizer) -> dict[str, torch.Tensor]:
    """32 BBC News articles (a seeded draw over all five topics), cut to 32 tokens."""
    examples = sources.load_task(TASK).examples
    pick = torch.randperm(len(examples), generator=torch.Generator().manual_seed(0))[:BATCH]
    batch = finetune.encode(tokenizer, examples.iloc[pick.tolist()], TOKENS)
    assert batch["input_ids"].shape == (BATCH, TOKENS), batch["input_ids"].shape
    return batch


class Trainer:
    """One model, its optimizer and schedule, built as `finetune.train` builds them."""

    def __init__(self, settings: dict, mask: dict[str, torch.Tensor] | None, scope: list[str]):
        self.model = sources.load_classifier(sources.Model(MODEL), 5, seed=0)
        self.settings = settings
        self.mask = mask
        self.scoped = scope_weights(self.model, scope)
        if mask is not None:
            masks.apply_mask(self.scoped, mask)
        named = list(self.model.named_parameters())
        no_decay = {n for n, _ in named if n.endswith("bias") or "LayerNorm" in n}
        self.optimizer = torch.optim.AdamW(
            [{"params": [p for n, p in named if n not in no_decay],
              "weight_decay": settings["weight_decay"]},
             {"params": [p for n, p in named if n in no_decay], "weight_decay": 0.0}],
            lr=settings["learning_rate"], eps=settings["adam_epsilon"], fused=True)
        # a long schedule, so the learning rate stays away from 0 for every timed step
        self.scheduler = finetune.linear_schedule(self.optimizer, 10_000, 0)
        self.model.train()

    def step(self, batch: dict[str, torch.Tensor]) -> float:
        """The body of `finetune.train`'s loop, timed."""
        start = time.perf_counter()
        with finetune.autocast(self.model, self.settings["precision"]):
            loss = self.model(**batch).loss
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.mask is not None:
            masks.apply_mask(self.scoped, self.mask)
        loss.item()
        return time.perf_counter() - start


def measure(warmup: int, pairs: int, mask_repeats: int) -> dict:
    params = load_params(ROOT / "params.yaml")
    settings = finetune_settings(params, TASK)
    scope = params["prune"]["scope"]
    torch.set_num_threads(settings["threads"])
    torch.use_deterministic_algorithms(True)  # as the finetune stage
    torch.manual_seed(0)
    batch = real_batch(sources.load_tokenizer(sources.Model(MODEL)))
    dense = Trainer(settings, None, scope)
    encoder_weights = scope_weights(sources.load_encoder(sources.Model(MODEL)), scope)
    mask = masks.omp_global(encoder_weights, [SPARSITY])[SPARSITY]
    sparse = Trainer(settings, mask, scope)
    for _ in range(warmup):
        dense.step(batch)
        sparse.step(batch)
    times: dict[str, list[float]] = {"dense": [], "sparse": []}
    for i in range(pairs):  # alternate which goes first, so neither always follows the other
        order = (("dense", dense), ("sparse", sparse))
        for name, trainer in order if i % 2 == 0 else order[::-1]:
            times[name].append(trainer.step(batch))
    leaked = finetune.pruned_nonzero(sparse.model, mask)
    assert leaked == 0, f"{leaked} pruned weights are non-zero after the sparse steps"
    apply_s, _ = median_seconds(lambda: masks.apply_mask(sparse.scoped, mask), mask_repeats)
    pruned = {name: ~keep for name, keep in mask.items()}

    def masked_fill() -> None:
        with torch.no_grad():
            for name, w in sparse.scoped.items():
                w.masked_fill_(pruned[name], 0.0)

    fill_s, _ = median_seconds(masked_fill, mask_repeats)
    dense_s, sparse_s = statistics.median(times["dense"]), statistics.median(times["sparse"])
    paired = statistics.median(s - d for d, s in zip(times["dense"], times["sparse"],
                                                     strict=True))
    q1, _, q3 = statistics.quantiles(times["dense"], n=4)
    return {"dense_s": dense_s, "sparse_s": sparse_s, "overhead": sparse_s / dense_s - 1,
            "dense_iqr": (q3 - q1) / dense_s,
            "paired_overhead": paired / dense_s, "apply_mask_s": apply_s,
            "masked_fill_s": fill_s, "pairs": pairs, "warmup": warmup,
            "threads": torch.get_num_threads(), "precision": settings["precision"],
            "scope_weights": sum(w.numel() for w in encoder_weights.values()),
            "params": sum(p.numel() for p in dense.model.parameters())}


def report(warmup: int, pairs: int, mask_repeats: int) -> str:
    r = measure(warmup, pairs, mask_repeats)
    ok = "yes" if r["overhead"] <= TARGET_OVERHEAD else "no"
    ms = 1e3
    return "\n".join([
        "## Sparse fine-tuning step vs dense step (MiniLM-L6, 50% global OMP)", "",
        f"One training step of the packaged MiniLM ({r['params'] / 1e6:.1f}M parameters, "
        f"{r['scope_weights'] / 1e6:.1f}M in scope) on {BATCH} x {TOKENS} tokens of BBC News, "
        f"AdamW (fused), {r['precision']} autocast, {r['threads']} thread: median of "
        f"{r['pairs']} alternating dense/sparse pairs after {r['warmup']} warm-up pairs. The "
        "sparse step adds `apply_mask` after the optimizer step, as `finetune.train` does. "
        f"Target: overhead at most {TARGET_OVERHEAD:.0%}.", "",
        "| dense step (ms) | sparse step (ms) | overhead | median paired overhead "
        "| noise: IQR of dense steps | within target |", "|---|---|---|---|---|---|",
        f"| {r['dense_s'] * ms:.1f} | {r['sparse_s'] * ms:.1f} | {r['overhead']:+.1%} "
        f"| {r['paired_overhead']:+.1%} | {r['dense_iqr']:.1%} | {ok} |", "",
        "An overhead smaller than the noise reads as noise (it can come out negative); the "
        "re-masking's own cost is the `apply_mask` row below.", "",
        f"Re-masking alone, median of {mask_repeats} calls:", "",
        "| re-masking | ms | share of a dense step |", "|---|---|---|",
        f"| `apply_mask` (w *= mask as float, the pipeline's) | {r['apply_mask_s'] * ms:.2f} "
        f"| {r['apply_mask_s'] / r['dense_s']:.1%} |",
        f"| `w.masked_fill_(~mask, 0)`, complement precomputed (alternative) "
        f"| {r['masked_fill_s'] * ms:.2f} | {r['masked_fill_s'] / r['dense_s']:.1%} |",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--mask-repeats", type=int, default=30)
    args = parser.parse_args()
    print(report(args.warmup, args.pairs, args.mask_repeats))


if __name__ == "__main__":
    main()
