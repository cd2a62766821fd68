"""Models and tasks by configuration: params.yaml's `catalog` entries, beside the built-in ones.

A model entry names a `from_pretrained` directory (`path`) or a hub repository (`hub`); its kind
and pruning scope come from its config.json. A task entry names its files (CSV, JSON Lines,
parquet) or a hub data set, and the columns holding the text, an optional second text and the
label: a text classification task, read through Hugging Face `datasets`. Everything here is
checked before any job starts (`check`), so a wrong path or column stops the build with one line.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.params import ParamsError
from ..pruning.scope import CAUSAL_LM_FAMILIES, FAMILIES, scope_problem
from .sources import CAUSAL_LMS, MODELS, TASKS, SourceError, TaskData
from .tasks import ARITHMETIC_TASKS, IMAGE_TASKS

if TYPE_CHECKING:  # pandas and datasets are imported where data is read
    import pandas as pd

# file suffix -> the `datasets` builder that reads it
FORMATS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}


def user_models(params: dict) -> dict[str, dict]:
    return params["catalog"]["models"]


def user_tasks(params: dict) -> dict[str, dict]:
    return params["catalog"]["tasks"]


def model_location(entry: dict) -> str:
    """What `from_pretrained` is given: the entry's directory or hub repository id."""
    return entry.get("path") or entry["hub"]


def location(params: dict, model: str) -> str | None:
    """A catalog model's location, handed to its jobs as --location; None for a built-in one."""
    entry = user_models(params).get(model)
    return model_location(entry) if entry else None


def config_path(entry: dict) -> Path | None:
    """config.json of a model entry: in its directory, or in the Hugging Face cache's `main`
    snapshot of a hub model (None when the cache does not hold it)."""
    if "path" in entry:
        return Path(entry["path"]) / "config.json"
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / f"models--{entry['hub'].replace('/', '--')}"
    ref = folder / "refs" / "main"
    return folder / "snapshots" / ref.read_text().strip() / "config.json" if ref.is_file() else None


def check_names(params: dict, where: str, source: str) -> None:
    """Every model and task named in `sources` (and every causal LM of `llm.models`) is built in
    or a catalog entry, and no entry takes a built-in's name (one name, one source)."""
    for key, kind, builtin, entries in (
            ("sources.models", "models", MODELS, user_models(params)),
            ("sources.tasks", "tasks", TASKS, user_tasks(params)),
            ("llm.models", "models", CAUSAL_LMS, user_models(params))):
        for name in entries:
            if name in builtin:
                raise ParamsError(f"{where}: catalog.{kind}.{name} has the name of a built-in "
                                  f"{kind[:-1]}; rename the entry in {source}")
        section, _, field = key.partition(".")
        for name in params[section][field]:
            if name not in builtin and name not in entries:
                raise ParamsError(
                    f"{where}: {key} has {name!r}, which is neither built in "
                    f"({', '.join(builtin)}) nor an entry of catalog.{kind}; add it under "
                    f"catalog.{kind} or fix {key} in {source}")
    tasks = [*TASKS, *IMAGE_TASKS, *ARITHMETIC_TASKS, *user_tasks(params)]
    for name in params["finetune"]["per_task"]:
        if name not in tasks:
            raise ParamsError(f"{where}: finetune.per_task.{name} = {name!r}: not allowed "
                              f"(allowed: {', '.join(tasks)}); fix it in {source}")


def _check_model(name: str, entry: dict, causal_lm: bool = False) -> None:
    """The entry's config.json is here and names a family with a known scope (and, for a model
    of llm.models, a causal-LM family)."""
    where = f"catalog.models.{name}"
    path = config_path(entry)
    if path is None:
        raise ParamsError(f"{where}: hub model {entry['hub']} is not in the Hugging Face cache "
                          f"and the hub is offline; download it on a connected machine "
                          f"(hf download {entry['hub']})")
    if not path.parent.is_dir():
        raise ParamsError(f"{where}: path {path.parent} does not exist; point it at a directory "
                          f"that save_pretrained wrote")
    if not path.is_file():
        raise ParamsError(f"{where}: {path.parent} has no config.json; point path at a directory "
                          f"that save_pretrained wrote")
    try:
        model_type = json.loads(path.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError) as exc:
        raise ParamsError(f"{where}: {path} is not a JSON mapping ({exc}); rewrite it with "
                          f"save_pretrained") from exc
    problem = scope_problem(model_type)
    if problem:
        raise ParamsError(f"{where}: {problem}")
    if causal_lm and FAMILIES[model_type] not in CAUSAL_LM_FAMILIES:
        causal = [t for t, family in FAMILIES.items() if family in CAUSAL_LM_FAMILIES]
        raise ParamsError(f"{where}: model_type {model_type!r} is not a causal LM (llm.models "
                          f"takes {', '.join(causal)}); name it in sources.models instead")


def _hub_snapshot(name: str, repo: str) -> str:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(repo, repo_type="dataset", local_files_only=True)
    except LocalEntryNotFoundError as exc:
        raise SourceError(f"catalog.tasks.{name}: data set {repo} is not in the Hugging Face "
                          f"cache and the hub is offline; download it on a connected machine "
                          f"(hf download --repo-type dataset {repo})") from exc


def _read(name: str, entry: dict, split: str) -> tuple[pd.DataFrame, list[str] | None]:
    """One split of a task entry as a frame of its own columns, read by `datasets` (into a
    scratch cache: nothing is left under ~/.cache), and the names of its classes when the data
    set declares them (a hub data set's ClassLabel: its labels are their indices, -1 where a
    split's labels are hidden, as on GLUE's test split; those rows are dropped)."""
    import datasets

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as cache:
        if "files" in entry:
            path = Path(entry["files"][split])
            if not path.is_file():
                raise SourceError(f"catalog.tasks.{name}: files.{split} {path} does not exist; "
                                  f"fix the path")
            builder = FORMATS.get(path.suffix.lower())
            if builder is None:
                raise SourceError(f"catalog.tasks.{name}: {path} is not a supported format "
                                  f"(supported: {', '.join(FORMATS)}); convert it to one")
            try:
                found = datasets.load_dataset(builder, data_files={split: str(path)},
                                              split=split, cache_dir=cache)
            except (ValueError, OSError, datasets.exceptions.DatasetGenerationError) as exc:
                # datasets refuses a split without rows, in these words
                if path.stat().st_size == 0 or "corresponds to no data" in str(exc):
                    raise SourceError(f"catalog.tasks.{name}: {split} has no rows; give it "
                                      f"examples") from exc
                raise SourceError(f"catalog.tasks.{name}: {path} cannot be read as {builder} "
                                  f"({' '.join(str(exc).split())}); fix the file") from exc
        else:
            root = _hub_snapshot(name, entry["hub"])
            try:
                found = datasets.load_dataset(root, data_dir=entry.get("data_dir"),
                                              split=entry.get(f"{split}_split", split),
                                              cache_dir=cache)
            except (ValueError, OSError, datasets.exceptions.DatasetGenerationError) as exc:
                raise SourceError(f"catalog.tasks.{name}: {entry['hub']} cannot be read "
                                  f"({' '.join(str(exc).split())}); fix data_dir or "
                                  f"{split}_split") from exc
        frame = found.to_pandas()  # while the cache holds the table's files
    feature = found.features.get(entry["label"])
    if not isinstance(feature, datasets.ClassLabel):
        return frame, None
    return frame[frame[entry["label"]] >= 0].reset_index(drop=True), feature.names


def _columns(name: str, entry: dict, raw: pd.DataFrame, split: str) -> pd.DataFrame:
    """text, text_pair and the raw label of a split, with every named column checked."""
    wanted = {"text": entry["text"], "text_pair": entry.get("text_pair"), "label": entry["label"]}
    for key, column in wanted.items():
        if column is not None and column not in raw.columns:
            raise SourceError(f"catalog.tasks.{name}: {split} has no column {column!r} (its "
                              f"columns: {', '.join(map(str, raw.columns))}); fix {key}")
    missing = int(raw[entry["label"]].isna().sum())
    if missing:
        raise SourceError(f"catalog.tasks.{name}: the label column {entry['label']!r} of {split} "
                          f"has {missing} missing values; fill or drop those rows")
    import pandas as pd

    pair = raw[wanted["text_pair"]].fillna("").astype(str) if wanted["text_pair"] else ""
    return pd.DataFrame({"text": raw[entry["text"]].fillna("").astype(str), "text_pair": pair,
                         "label": raw[entry["label"]]})


def load_task(name: str, entry: dict) -> TaskData:
    """All labelled examples of a task entry, in file order, and its official test split if it
    names one. Labels are numbered as the data set declares its classes, else in sorted order of
    their values."""
    official_test = "test_split" in entry or "test" in entry.get("files", {})
    frames = {}
    for split in ["train", "test"] if official_test else ["train"]:
        raw, declared = _read(name, entry, split)
        if raw.empty:
            raise SourceError(f"catalog.tasks.{name}: {split} has no labelled rows; name a split "
                              f"with labels")
        frames[split] = _columns(name, entry, raw, split)
    found = sorted(set().union(*(set(f["label"]) for f in frames.values())))
    if len(found) < 2:
        raise SourceError(f"catalog.tasks.{name}: the label column {entry['label']!r} has one "
                          f"class ({found[0]!r}); a classifier needs two or more")
    values = list(range(len(declared))) if declared else found
    number = {value: index for index, value in enumerate(values)}
    frames = {split: f.assign(label=f["label"].map(number)) for split, f in frames.items()}
    return TaskData(frames["train"], declared or [str(v) for v in values],
                    fixed_test=frames.get("test"))


def check(params: dict) -> None:
    """Every catalog entry the profile uses is here and usable, and the data section can split
    each task: one ParamsError line naming the entry and the fix, before any job runs."""
    from ..data.splitting import make_splits

    for name in params["sources"]["models"]:
        if name in user_models(params):
            _check_model(name, user_models(params)[name])
    for name in params["llm"]["models"]:
        if name in user_models(params):
            _check_model(name, user_models(params)[name], causal_lm=True)
    for name in params["sources"]["tasks"]:
        if name not in user_tasks(params):
            continue
        try:
            task = load_task(name, user_tasks(params)[name])
            make_splits(task, params["data"], params["data"]["seed"], f"catalog.tasks.{name}")
        except (SourceError, ValueError) as exc:
            raise ParamsError(str(exc)) from exc


def available(params: dict) -> list[dict]:
    """`essential-sparsity sources`' rows for the catalog entries: where each comes from,
    whether it is here, and the fix when it is not."""
    rows = []
    for name, entry in user_models(params).items():
        path = config_path(entry)
        fix = f"hf download {entry['hub']}" if "hub" in entry else f"fix catalog.models.{name}"
        rows.append({"kind": "model", "name": name, "source": f"catalog {model_location(entry)}",
                     "installed": bool(path and path.is_file()), "fix": fix})
    for name, entry in user_tasks(params).items():
        if "hub" in entry:
            try:
                here = bool(_hub_snapshot(name, entry["hub"]))
            except SourceError:
                here = False
            where, fix = entry["hub"], f"hf download --repo-type dataset {entry['hub']}"
        else:
            where, fix = entry["files"]["train"], f"fix catalog.tasks.{name}.files"
            here = Path(where).is_file()
        rows.append({"kind": "task", "name": name, "source": f"catalog {where}", "installed": here,
                     "fix": fix})
    return rows
