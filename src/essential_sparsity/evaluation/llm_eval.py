"""Zero-shot evaluation of a causal LM, pruned or dense, with no fine-tuning: held-out perplexity
and multiple-choice accuracy by comparing the likelihood of each answer.

Multiple choice is scored as lm-evaluation-harness's `acc_norm`: the log-likelihood of each
answer given the prompt, divided by the answer's length in characters, so long answers are not
penalised for their length; the best-scoring answer is the model's choice.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

QUESTION = 'The word "{word}" means'
MMLU_REPO = "cais/mmlu"


def token_windows(tokenizer, documents: list[str], sequences: int, tokens: int) -> torch.Tensor:
    """The documents joined by the end-of-text token and cut into `sequences` windows of `tokens`
    tokens, in order (the held-out documents were shuffled once when the corpus was split)."""
    separator = tokenizer.eos_token or "\n\n"
    needed = sequences * tokens
    ids: list[int] = []
    for doc in documents:
        ids += tokenizer(doc + separator, add_special_tokens=False)["input_ids"]
        if len(ids) >= needed:
            return torch.tensor(ids[:needed]).view(sequences, tokens)
    raise ValueError(f"the text has {len(ids)} tokens, fewer than {sequences} x {tokens}; ask "
                     f"for fewer or shorter sequences, or a larger held-out share of the corpus")


def perplexity(model: torch.nn.Module, windows: torch.Tensor,
               batch_size: int) -> dict:
    """Mean next-token cross-entropy over every window, and its exponential; `per_window`: each
    window's mean cross-entropy over its tokens (a paired comparison of two models needs them
    window by window)."""
    total, count, per_window = 0.0, 0, []
    with torch.no_grad():
        for start in range(0, windows.shape[0], batch_size):
            batch = windows[start:start + batch_size].to(model.device)
            logits = model(batch, use_cache=False).logits[:, :-1].float()
            targets = batch[:, 1:]
            flat = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
            total += float(F.cross_entropy(*flat, reduction="sum"))
            per_window += F.cross_entropy(*flat, reduction="none").view(targets.shape).mean(1) \
                .tolist()
            count += targets.numel()
    loss = total / count
    return {"loss": loss, "perplexity": math.exp(loss), "tokens": count,
            "per_window": {"tokens": [windows.shape[1] - 1] * windows.shape[0],
                           "loss": per_window}}


def _pairs(tokenizer, items: list[dict]) -> list[tuple[list[int], list[int], int]]:
    """(prompt ids, answer ids, answer characters) of every answer of every question."""
    pairs = []
    for item in items:
        prompt = tokenizer(QUESTION.format(word=item["word"]), add_special_tokens=False)
        for choice in item["choices"]:
            answer = f" {choice}."
            ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
            pairs.append((prompt["input_ids"], ids, len(answer)))
    return pairs


def _answer_loglik(model, pairs, pad_id: int) -> list[float]:
    """Sum of log p(answer token | prompt, earlier answer tokens) for each pair in one batch.
    Rows are padded on the left so every answer ends at the last position, and only the last
    positions' logits are computed: the LM head over the whole vocabulary is most of the cost."""
    length = max(len(p) + len(a) for p, a, _ in pairs)
    keep = max(len(a) for _, a, _ in pairs) + 1
    ids = torch.full((len(pairs), length), pad_id)
    attention = torch.zeros((len(pairs), length), dtype=torch.long)
    for row, (prompt, answer, _) in enumerate(pairs):
        ids[row, length - len(prompt) - len(answer):] = torch.tensor(prompt + answer)
        attention[row, length - len(prompt) - len(answer):] = 1
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    ids, attention, positions = (t.to(model.device) for t in (ids, attention, positions))
    logits = model(ids, attention_mask=attention, position_ids=positions, use_cache=False,
                   logits_to_keep=keep).logits.float().cpu()
    logprobs = logits.log_softmax(-1)
    sums = []
    for row, (_, answer, _) in enumerate(pairs):
        # logits at column c predict the token at column c + 1 of the kept window
        cols = torch.arange(keep - 1 - len(answer), keep - 1)
        sums.append(float(logprobs[row, cols, torch.tensor(answer)].sum()))
    return sums


def multiple_choice(model: torch.nn.Module, tokenizer, items: list[dict],
                    batch_size: int) -> dict:
    """Accuracy over the questions, each answer scored by its log-likelihood per character, and
    each question's answer, prediction, score (`per_example`, 100 when right) and every
    choice's log-likelihood per character (`choice_0`, ...). Answers are batched in order of
    length, which keeps padding (wasted compute) small."""
    pairs = _pairs(tokenizer, items)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    scores = [0.0] * len(pairs)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            sums = _answer_loglik(model, [pairs[i] for i in batch], pad_id)
            for i, total in zip(batch, sums, strict=True):
                scores[i] = total / pairs[i][2]
    answers, predicted, options, offset = [], [], [], 0
    for item in items:
        options.append(scores[offset:offset + len(item["choices"])])
        answers.append(item["answer"])
        predicted.append(max(range(len(options[-1])), key=options[-1].__getitem__))
        offset += len(item["choices"])
    correct = [int(p == a) for p, a in zip(predicted, answers, strict=True)]
    choices = {f"choice_{j}": [row[j] for row in options] for j in range(len(options[0]))}
    return {"accuracy": 100.0 * sum(correct) / len(items), "questions": len(items),
            "chance": 100.0 / len(items[0]["choices"]),
            "per_example": {"example": list(range(len(items))), "answer": answers,
                            "predicted": predicted, "correct": correct,
                            "score": [100 * c for c in correct], **choices}}


def _mmlu_tasks_dir() -> Path:
    import lm_eval

    return Path(lm_eval.__file__).parent / "tasks" / "mmlu" / "default"


def mmlu_subjects() -> dict[str, str]:
    """Subject -> category (stem, humanities, social_sciences, other), from lm-evaluation-
    harness's own task files, so the categories are the harness's."""
    import yaml

    subjects = {}
    for path in sorted(_mmlu_tasks_dir().glob("mmlu_*.yaml")):
        config = yaml.safe_load(path.read_text())
        subjects[config["dataset_name"]] = config["tag"].removeprefix("mmlu_").removesuffix(
            "_tasks")
    return subjects


def mmlu(model: torch.nn.Module, tokenizer, batch_size: int, num_fewshot: int) -> dict:
    """MMLU through lm-evaluation-harness (its prompt, few-shot examples and `acc`), read from
    the Hugging Face cache. `datasets` will not resolve a hub name offline, so every subject's
    task is the harness's template with the cached snapshot as its dataset path. Accuracy
    overall and per category is the mean over questions (the harness's groups weight subjects by
    size); `per_example` holds each question as the harness logged it."""
    import lm_eval
    import yaml
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError
    from lm_eval.models.huggingface import HFLM

    from ..catalog.sources import SourceError

    try:
        local = snapshot_download(MMLU_REPO, repo_type="dataset")
    except LocalEntryNotFoundError as exc:
        raise SourceError(f"MMLU: {MMLU_REPO} is not in the Hugging Face cache and the hub is "
                          f"offline; download it on a connected machine (hf download "
                          f"--repo-type dataset {MMLU_REPO})") from exc
    template = yaml.safe_load((_mmlu_tasks_dir() / "_default_template_yaml").read_text())
    subjects = mmlu_subjects()
    tasks = [{**template, "task": f"mmlu_{subject}", "dataset_path": local,
              "dataset_name": subject} for subject in subjects]
    harness = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    evaluated = lm_eval.simple_evaluate(model=harness, tasks=tasks, num_fewshot=num_fewshot)
    results = evaluated["results"]
    correct: dict[str, float] = {}
    asked: dict[str, int] = {}
    for subject, category in subjects.items():
        row = results[f"mmlu_{subject}"]
        correct[category] = correct.get(category, 0.0) + row["acc,none"] * row["sample_len"]
        asked[category] = asked.get(category, 0) + row["sample_len"]
    rows = [_mmlu_row(subject, sample) for subject in subjects
            for sample in sorted(evaluated["samples"][f"mmlu_{subject}"],
                                 key=lambda sample: sample["doc_id"])]
    return {"accuracy": 100.0 * sum(correct.values()) / sum(asked.values()),
            "questions": sum(asked.values()), "chance": 25.0,
            "categories": {c: 100.0 * correct[c] / asked[c] for c in sorted(correct)},
            "per_example": {key: [row[key] for row in rows] for key in rows[0]}}


def _mmlu_row(subject: str, sample: dict) -> dict:
    """One MMLU question as the harness logged it: its answer, the choice of highest
    log-likelihood (the harness's `acc`), and every choice's log-likelihood."""
    logliks = [float(response[0]) for response in sample["filtered_resps"]]
    correct = int(sample["acc"])
    return {"subject": subject, "example": sample["doc_id"], "answer": sample["target"],
            "predicted": max(range(len(logliks)), key=logliks.__getitem__), "correct": correct,
            "score": 100 * correct, **{f"choice_{j}": v for j, v in enumerate(logliks)}}
