"""Models and tasks by configuration: params.yaml's `catalog` entries, beside the built-in ones.

A model entry names a `from_pretrained` directory (`path`) or a hub repository (`hub`); its kind
and pruning scope come from its config.json. A task entry names its files (CSV, JSON Lines,
parquet, or a folder of images per class) or a hub data set, read through Hugging Face
`datasets` (`data.readers`), its kind (text classification, extractive QA or image
classification) and the columns its kind reads. A corpus entry (`data.corpus` reads it) names
plain text. `catalog.check` reads every entry in use before any job starts, so a wrong path or
column stops the build with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..config.params import ParamsError
from ..data.images import ImageData, decode_images
from ..data.readers import hub_snapshot, read_entry, require_columns
from .builtin import CAUSAL_LMS, CORPORA, MODELS, VISION_MODELS
from .sources import QA_LABELS, TASKS, SourceError, TaskData, qa_frame
from .tasks import ARITHMETIC_TASKS, IMAGE, IMAGE_TASKS, QA, TEXT, task, task_of

if TYPE_CHECKING:  # pandas and datasets are imported where data is read
    import pandas as pd


def _entries(params: dict, section: str, names: list[str] | None) -> dict[str, dict]:
    """params.yaml's own entries of catalog.<section>: all, or those among `names` (a list that
    also holds built-in names), in the list's order."""
    own = params["catalog"].get(section, {})
    return own if names is None else {name: own[name] for name in names if name in own}


def user_models(params: dict, names: list[str] | None = None) -> dict[str, dict]:
    return _entries(params, "models", names)


def user_tasks(params: dict, names: list[str] | None = None) -> dict[str, dict]:
    return _entries(params, "tasks", names)


def user_corpora(params: dict, names: list[str] | None = None) -> dict[str, dict]:
    return _entries(params, "corpora", names)


def entry_location(entry: dict) -> str:
    """What `from_pretrained` is given: the entry's directory or hub repository id."""
    return entry.get("path") or entry["hub"]


def location(params: dict, model: str) -> str | None:
    """A catalog model's location, handed to its jobs as --location; None for a built-in one."""
    entry = user_models(params).get(model)
    return entry_location(entry) if entry else None


def config_path(entry: dict) -> Path | None:
    """config.json of a model entry: in its directory, or in the Hugging Face cache's `main`
    snapshot of a hub model (None when the cache does not hold it)."""
    if "path" in entry:
        return Path(entry["path"]) / "config.json"
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / f"models--{entry['hub'].replace('/', '--')}"
    ref = folder / "refs" / "main"
    return folder / "snapshots" / ref.read_text().strip() / "config.json" if ref.is_file() else None


ONE = {"models": "model", "tasks": "task", "corpora": "corpus"}


def check_names(params: dict, where: str, source: str) -> None:
    """Every model and task named in `sources`, every model and image task of `vision`, every
    causal LM of `llm.models` and every corpus of `corpus.sources` and `pretrain.corpus` is built
    in or a catalog entry (a task of a kind that section's figures take), and no entry takes a
    built-in's name (one name, one source)."""
    for key, kind, builtin, entries in (
            ("sources.models", "models", MODELS, user_models(params)),
            ("sources.tasks", "tasks", TASKS, user_tasks(params)),
            ("llm.models", "models", CAUSAL_LMS, user_models(params)),
            ("vision.models", "models", VISION_MODELS, user_models(params)),
            ("vision.tasks", "tasks", IMAGE_TASKS, user_tasks(params)),
            ("corpus.sources", "corpora", CORPORA, user_corpora(params)),
            ("pretrain.corpus", "corpora", CORPORA, user_corpora(params))):
        for name in entries:
            if name in builtin:
                raise ParamsError(f"{where}: catalog.{kind}.{name} has the name of a built-in "
                                  f"{ONE[kind]}; rename the entry in {source}")
        section, _, field = key.partition(".")
        for name in params[section][field]:
            if name not in builtin and name not in entries:
                raise ParamsError(
                    f"{where}: {key} has {name!r}, which is neither built in "
                    f"({', '.join(builtin)}) nor an entry of catalog.{kind}; add it under "
                    f"catalog.{kind} or fix {key} in {source}")
    for key, kinds, fix in (("sources.tasks", (TEXT, QA), "name it in vision.tasks"),
                            ("vision.tasks", (IMAGE,), "name it in sources.tasks")):
        section, _, field = key.partition(".")
        for name in params[section][field]:
            kind = task_of(params, name).kind
            if name in user_tasks(params) and kind not in kinds:
                raise ParamsError(f"{where}: {key} has {name!r}, a task of kind {kind}, but "
                                  f"its figures take {' or '.join(kinds)} tasks; {fix} or set "
                                  f"catalog.tasks.{name}.kind in {source}")
    tasks = [*TASKS, *IMAGE_TASKS, *ARITHMETIC_TASKS, *user_tasks(params)]
    for name in params["finetune"]["per_task"]:
        if name not in tasks:
            raise ParamsError(f"{where}: finetune.per_task.{name} = {name!r}: not allowed "
                              f"(allowed: {', '.join(tasks)}); fix it in {source}")


def _label_column(entry: dict, kind: str) -> str | None:
    """The column holding the class: the entry's `label`; an image task's defaults to an image
    folder's `label`; a question-answering task has none."""
    if kind == QA:
        return None
    return entry.get("label", "label" if kind == IMAGE else None)


def _columns(name: str, entry: dict, kind: str, raw: pd.DataFrame,
             split: str) -> pd.DataFrame:
    """What a split gives its kind, with every named column checked: text, text_pair and the
    raw label of a text task; the encoded images and raw label of an image task; questions,
    contexts and gold answers of a question-answering task."""
    import pandas as pd

    if kind == QA:
        wanted = {"text": entry["text"], "text_pair": entry["text_pair"],
                  "answers": entry["answers"]}
        require_columns(f"catalog.tasks.{name}", raw, split, wanted)
        frame = qa_frame(raw[entry["text"]], raw[entry["text_pair"]], raw[entry["answers"]])
        _check_answers(name, frame, split)
        return frame
    label = _label_column(entry, kind)
    if kind == IMAGE:
        image = entry.get("image", "image")
        require_columns(f"catalog.tasks.{name}", raw, split, {"image": image, "label": label})
        frame = pd.DataFrame({"image": raw[image], "label": raw[label]})
    else:
        wanted = {"text": entry["text"], "text_pair": entry.get("text_pair"), "label": label}
        require_columns(f"catalog.tasks.{name}", raw, split, wanted)
        pair = raw[wanted["text_pair"]].fillna("").astype(str) if wanted["text_pair"] else ""
        frame = pd.DataFrame({"text": raw[entry["text"]].fillna("").astype(str),
                              "text_pair": pair, "label": raw[label]})
    missing = int(frame["label"].isna().sum())
    if missing:
        raise SourceError(f"catalog.tasks.{name}: the label column {label!r} of {split} "
                          f"has {missing} missing values; fill or drop those rows")
    return frame


def _check_answers(name: str, frame: pd.DataFrame, split: str) -> None:
    """Every question has a gold answer, found in its context at its answer_start: a span a run
    is trained to predict and scored against."""
    for row, (context, texts, starts) in enumerate(zip(
            frame["text_pair"], frame["answer_texts"], frame["answer_starts"], strict=True)):
        wrong = [t for t, s in zip(texts, starts, strict=True) if context[s:s + len(t)] != t]
        if not texts or wrong:
            what = (f"answer {wrong[0]!r} is not at its answer_start in the context" if wrong
                    else "has no gold answer")
            raise SourceError(f"catalog.tasks.{name}: question {row} of {split}: {what}; fix "
                              f"answers (text and answer_start, in characters of the context)")


def load_task(name: str, entry: dict) -> TaskData | ImageData:
    """All examples of a task entry, in file order, and its official test split if it names
    one. Labels are numbered as the data set declares its classes, else in sorted order of their
    values; a question-answering task has one stratum (`sources.QA_LABELS`)."""
    kind = task(name, entry).kind
    label = _label_column(entry, kind)
    official_test = "test_split" in entry or "test" in entry.get("files", {})
    frames, declared = {}, None
    for split in ["train", "test"] if official_test else ["train"]:
        raw, declared = read_entry(f"catalog.tasks.{name}", entry, split, label)
        if raw.empty:
            raise SourceError(f"catalog.tasks.{name}: {split} has no labelled rows; name a split "
                              f"with labels")
        frames[split] = _columns(name, entry, kind, raw, split)
    if kind == QA:
        return TaskData(frames["train"], QA_LABELS, fixed_test=frames.get("test"))
    found = sorted(set().union(*(set(f["label"]) for f in frames.values())))
    if len(found) < 2:
        raise SourceError(f"catalog.tasks.{name}: the label column {label!r} has "
                          f"one class ({found[0]!r}); a classifier needs two or more")
    values = list(range(len(declared))) if declared else found
    number = {value: index for index, value in enumerate(values)}
    frames = {split: f.assign(label=f["label"].map(number)) for split, f in frames.items()}
    names = declared or [str(v) for v in values]
    if kind == IMAGE:
        return _image_task(name, entry, frames, names)
    return TaskData(frames["train"], names, fixed_test=frames.get("test"))


def _image_task(name: str, entry: dict, frames: dict[str, pd.DataFrame],
                names: list[str]) -> ImageData:
    """Decoded images: every split at one size (the entry's `side`, else the first image's)."""
    import numpy as np

    arrays = {}
    side = entry.get("side")
    for split, frame in frames.items():
        images = decode_images([cell.get("bytes") or cell["path"] for cell in frame["image"]],
                               f"catalog.tasks.{name}: {split}", side)
        side = images.shape[-1]
        arrays[split] = (images, frame["label"].to_numpy(dtype=np.int64))
    return ImageData(*arrays["train"], names, fixed_test=arrays.get("test"))


def available(params: dict) -> list[dict]:
    """`essential-sparsity sources`' rows for the catalog entries: where each comes from,
    whether it is here, and the fix when it is not."""
    rows = []
    for name, entry in user_models(params).items():
        path = config_path(entry)
        fix = f"hf download {entry['hub']}" if "hub" in entry else f"fix catalog.models.{name}"
        rows.append({"kind": "model", "name": name, "source": f"catalog {entry_location(entry)}",
                     "installed": bool(path and path.is_file()), "fix": fix})
    for kind, section, named in (("task", "tasks", user_tasks(params)),
                                 ("corpus", "corpora", user_corpora(params))):
        for name, entry in named.items():
            if "hub" in entry:
                try:
                    here = bool(hub_snapshot(f"catalog.{section}.{name}", entry["hub"]))
                except SourceError:
                    here = False
                where, fix = entry["hub"], f"hf download --repo-type dataset {entry['hub']}"
            else:  # a file, or a task's image folder
                where, fix = entry["files"]["train"], f"fix catalog.{section}.{name}.files"
                here = Path(where).exists()
            rows.append({"kind": kind, "name": name, "source": f"catalog {where}",
                         "installed": here, "fix": fix})
    return rows
