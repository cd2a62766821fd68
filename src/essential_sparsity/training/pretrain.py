"""Masked-language-model pre-training of a BERT from scratch, resumable to the bit.

Section 5 of the paper pre-trains bert-base on nested random subsets of BookCorpus with identical
settings, seed and steps, and counts the zero weights of every checkpoint. The comparison is fair
only if the data are the one difference, so everything random here is a pure function of
(seed, step): which sequences form a batch (a seeded permutation of the subset per epoch), which
tokens are masked, and dropout. A run killed after checkpoint k resumes from that checkpoint's
weights and optimizer state and ends bit-identical to one never interrupted, without saving any
random-number state.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..records.io import (
    ArtefactError,
    atomic_dir,
    read_tensors,
    without_timings,
    write_json,
    write_tensors,
)
from .device import device_name, precision
from .finetune import adamw, autocast, linear_factor

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
RESUME = "resume.safetensors"
ADAM_STATE = ("step", "exp_avg", "exp_avg_sq")


def train_tokenizer(texts: Iterable[str], vocab_size: int, max_length: int):
    """A lower-cased WordPiece vocabulary (BERT's scheme) learnt from `texts`, as a fast BERT
    tokenizer that `from_pretrained` and the fine-tuning stage read like any other."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer
    from transformers import BertTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(texts, WordPieceTrainer(vocab_size=vocab_size, show_progress=False,
                                                    special_tokens=SPECIAL_TOKENS))
    # The trainer numbers its alphabet in hash-map order, which changes from run to run. WordPiece
    # matches strings, not ids, so renumbering (special tokens, then the rest sorted) tokenizes
    # the same and makes the ids, hence the packed data and the checkpoints, reproducible. (Merges
    # tied in count at the vocabulary's cutoff can still differ on a tiny text; on the default
    # corpus repeated trainings learn the same tokens.)
    learnt = sorted(token for token in tok.get_vocab() if token not in SPECIAL_TOKENS)
    tok.model = models.WordPiece({t: i for i, t in enumerate([*SPECIAL_TOKENS, *learnt])},
                                 unk_token="[UNK]")
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return BertTokenizerFast(tokenizer_object=tok, model_max_length=max_length)


def pack_sequences(tokenizer, texts: list[str], length: int, limit: int | None) -> torch.Tensor:
    """Documents tokenized and concatenated (a [SEP] after each), cut into full sequences of
    `length` tokens framed by [CLS] ... [SEP], as BERT's pre-training packs text: no padding,
    so every token trains. Stops after `limit` sequences (None: all)."""
    body = length - 2
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    rows: list[list[int]] = []
    buffer: list[int] = []
    for start in range(0, len(texts), 2000):
        encoded = tokenizer(texts[start:start + 2000], add_special_tokens=False)["input_ids"]
        for ids in encoded:
            buffer.extend([*ids, sep])
        while len(buffer) >= body and (limit is None or len(rows) < limit):
            rows.append([cls, *buffer[:body], sep])
            buffer = buffer[body:]
        if limit is not None and len(rows) >= limit:
            break
    return torch.tensor(rows, dtype=torch.int32).reshape(-1, length)


def nested_subset(n: int, fraction: float, seed: int) -> torch.Tensor:
    """The first round(fraction x n) of one seeded permutation: every subset of a smaller
    fraction lies inside every larger one, as the paper's random selections of BookCorpus."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[:max(1, round(fraction * n))].sort().values


def derived_seed(seed: int, purpose: str, index: int) -> int:
    digest = hashlib.sha256(f"{seed}/{purpose}/{index}".encode()).hexdigest()
    return int(digest[:15], 16)


def derived_generator(seed: int, purpose: str, index: int) -> torch.Generator:
    return torch.Generator().manual_seed(derived_seed(seed, purpose, index))


@lru_cache(maxsize=2)
def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=derived_generator(seed, "order", epoch))


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> torch.Tensor:
    """The sequences of batch `step`: positions step x B ... of the concatenated per-epoch
    permutations, so each epoch visits every sequence once and any step can be recomputed."""
    positions = torch.arange(step * batch_size, (step + 1) * batch_size)
    epochs = positions // n
    index = torch.empty_like(positions)
    for epoch in epochs.unique().tolist():
        chosen = epochs == epoch
        index[chosen] = _epoch_order(n, seed, epoch)[positions[chosen] % n]
    return index


def mask_tokens(ids: torch.Tensor, generator: torch.Generator, probability: float,
                tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: `probability` of the non-special tokens are predicted; of those 80% are
    replaced by [MASK], 10% by a random token and 10% left as they are."""
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    chosen = (torch.rand(ids.shape, generator=generator) < probability) & ~special
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    draw = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(len(tokenizer), ids.shape, generator=generator)
    inputs = torch.where(chosen & (draw < 0.8), tokenizer.mask_token_id, ids)
    inputs = torch.where(chosen & (draw >= 0.8) & (draw < 0.9), random_ids, inputs)
    return inputs, labels


def build_model(settings: dict, tokenizer):
    """A BERT with an MLM head from the configured sizes, initialised from the seed alone, so
    every data subset starts from the same weights."""
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=settings["max_length"],
                        pad_token_id=tokenizer.pad_token_id, **settings["model"])
    torch.manual_seed(settings["seed"])
    return BertForMaskedLM(config)


def optimizer_tensors(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    return {f"{name}/{key}": optimizer.state[param][key].cpu()
            for name, param in model.named_parameters() if param in optimizer.state
            for key in ADAM_STATE}


def load_optimizer(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    tensors: dict[str, torch.Tensor]) -> None:
    for name, param in model.named_parameters():
        if f"{name}/step" in tensors:
            optimizer.state[param] = {key: tensors[f"{name}/{key}"].to(param.device)
                                      for key in ADAM_STATE}


@torch.no_grad()
def heldout_loss(model: torch.nn.Module, heldout: torch.Tensor, settings: dict, tokenizer) -> float:
    """Mean MLM loss on held-out sequences under one fixed masking, comparable across steps."""
    model.eval()
    inputs, labels = mask_tokens(heldout, derived_generator(settings["seed"], "heldout", 0),
                                 settings["mlm_probability"], tokenizer)
    inputs, labels = inputs.to(model.device), labels.to(model.device)
    total, count = 0.0, 0
    for start in range(0, len(inputs), settings["batch_size"]):
        batch_labels = labels[start:start + settings["batch_size"]]
        with autocast(model, settings["precision"]):
            loss = model(input_ids=inputs[start:start + settings["batch_size"]],
                         labels=batch_labels).loss
        n = int((batch_labels != -100).sum())
        total, count = total + float(loss) * n, count + n
    model.train()
    return total / max(count, 1)


def _train_step(model, optimizer, sequences: torch.Tensor, settings: dict, step: int,
                tokenizer) -> float:
    seed = settings["seed"]
    index = batch_indices(step, len(sequences), settings["batch_size"], seed)
    inputs, labels = mask_tokens(sequences[index], derived_generator(seed, "mask", step),
                                 settings["mlm_probability"], tokenizer)
    inputs, labels = inputs.to(model.device), labels.to(model.device)
    factor = linear_factor(step, settings["steps"], settings["warmup_steps"])
    for group in optimizer.param_groups:
        group["lr"] = settings["learning_rate"] * factor
    torch.manual_seed(derived_seed(seed, "dropout", step))
    with autocast(model, settings["precision"]):
        loss = model(input_ids=inputs, labels=labels).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def checkpoint_steps(settings: dict) -> list[int]:
    """Step 0 (the initialisation), every `checkpoint_every` steps, and the last step."""
    every, steps = settings["checkpoint_every"], settings["steps"]
    return sorted({*range(0, steps, every), steps})


def step_dir(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / f"step-{step}"


def resume_point(work: Path, fingerprint: str) -> tuple[int, list[dict]] | None:
    """The last complete checkpoint of an interrupted run with the same settings and data."""
    from ..records.io import read_metadata

    resume = work / RESUME
    if not resume.is_file():
        return None
    meta = read_metadata(resume)
    if meta.get("fingerprint") != fingerprint or not step_dir(work, int(meta["step"])).is_dir():
        return None
    return int(meta["step"]), json.loads(meta["history"])


def run(sequences: torch.Tensor, heldout: torch.Tensor, tokenizer, settings: dict,
        work: str | Path, fingerprint: str, desc: str = "pre-train",
        log: Callable[[str], None] = print,
        device: torch.device | str = "cpu") -> list[dict]:
    """Pre-train into `work` on `device`, checkpointing as it goes; resume there if a run with the
    same `fingerprint` (settings and data) was interrupted. Returns the loss history, one row per
    checkpoint: the mean training loss since the previous one and the held-out loss. Masking
    draws stay on the CPU, so a run's tokens are the same on any device."""
    from transformers import BertForMaskedLM

    work = Path(work)
    torch.use_deterministic_algorithms(True)
    point = resume_point(work, fingerprint)
    if point is None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        model, start = build_model(settings, tokenizer).to(device), 0
        optimizer = adamw(model, settings["learning_rate"], settings["weight_decay"])
        history = [{"step": 0, "train_loss": None,
                    "heldout_loss": heldout_loss(model, heldout, settings, tokenizer)}]
        _checkpoint(model, optimizer, tokenizer, work, 0, fingerprint, history)
    else:
        start, history = point
        log(f"resuming {work} from step {start}")
        model = BertForMaskedLM.from_pretrained(str(step_dir(work, start)),
                                                use_safetensors=True).to(device)
        optimizer = adamw(model, settings["learning_rate"], settings["weight_decay"])
        load_optimizer(model, optimizer, read_tensors(work / RESUME))
        drop_later_steps(work, start)
    model.train()
    return train_loop(start, settings, history, desc,
                      lambda step: _train_step(model, optimizer, sequences, settings, step,
                                               tokenizer),
                      lambda: {"heldout_loss": heldout_loss(model, heldout, settings,
                                                              tokenizer)},
                      lambda step, rows: _checkpoint(model, optimizer, tokenizer, work, step,
                                                     fingerprint, rows))


def drop_later_steps(work: Path, start: int) -> None:
    """Checkpoints an interrupted run wrote past its resume point: the resumed run rewrites them."""
    for stale in work.glob("step-*"):
        if int(stale.name.split("-")[1]) > start:
            shutil.rmtree(stale)


def train_loop(start: int, settings: dict, history: list[dict], desc: str,
               train_step: Callable[[int], float], metrics: Callable[[], dict],
               checkpoint: Callable[[int, list[dict]], None]) -> list[dict]:
    """Steps `start` to `settings["steps"]`, with a progress bar. At every checkpoint step the
    history gains a row (the mean training loss since the previous one, then the held-out
    `metrics`) and `checkpoint` saves the run with that history, so a resumed run continues the
    same rows."""
    saves = checkpoint_steps(settings)
    losses: list[float] = []
    with tqdm(total=settings["steps"], initial=start, desc=desc, mininterval=2.0,
              unit="step") as bar:
        for step in range(start, settings["steps"]):
            losses.append(train_step(step))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            bar.update()
            if step + 1 in saves:
                history.append({"step": step + 1, "train_loss": sum(losses) / len(losses),
                                **metrics()})
                checkpoint(step + 1, history)
                losses = []
    return history


def _checkpoint(model, optimizer, tokenizer, work: Path, step: int, fingerprint: str,
                history: list[dict]) -> None:
    """The weights as a loadable model directory, then the optimizer state that resumes from it
    (written second: a resume file always points at a complete checkpoint)."""
    with atomic_dir(step_dir(work, step)) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
    write_tensors(work / RESUME, optimizer_tensors(model, optimizer),
                  metadata={"step": str(step), "fingerprint": fingerprint,
                            "history": json.dumps(history)})


def finish(work: str | Path, out_dir: str | Path) -> None:
    """Drop the resume state and rename the completed run into place."""
    import os

    work, out_dir = Path(work), Path(out_dir)
    if not (work / RESUME).is_file():
        raise ArtefactError(f"{work}: no completed run to finish; rerun the pretrain job")
    (work / RESUME).unlink()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(work, out_dir)


def finish_run(work: str | Path, out_dir: str | Path, summary: dict, history: list[dict],
               settings: dict, examples: int, device: torch.device, started: float) -> dict:
    """Record a completed run (what every pre-training objective reports of its run: `summary`,
    then its schedule, history, device and precision) in its run.json, and finish it."""
    summary = {**summary, "epochs": settings["steps"] * settings["batch_size"] / examples,
               "steps": settings["steps"], "final_step": history[-1]["step"], "history": history,
               "wall_time_s": round(time.perf_counter() - started, 2),
               "device": device_name(device),
               "precision": precision(settings["precision"], device.type)}
    write_json(Path(work) / "run.json", without_timings(summary))
    finish(work, out_dir)
    return summary
