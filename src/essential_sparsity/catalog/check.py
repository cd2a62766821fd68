"""The catalog's entries checked before any job runs: every model, task and corpus the profile
uses is here and usable (its files, columns and labels; its model family; enough examples for the
data section), or the build stops with one ParamsError line naming the entry and the fix. The
Snakefile and `essential-sparsity check` call it; no job does, so what it reads to check (splits,
corpora) is no job's code.

Reading a task or corpus in full (an image folder decoded, a corpus split into documents) takes
seconds to minutes, and Snakemake starts often: a dry run, a rerun of one figure. So a task or
corpus that passed is recorded in a stamp file by what it is (its entry, the settings it was
checked with, its files' sizes and modification times, this check's code) and is read again only
when one of those changes."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
from pathlib import Path

from ..config.params import ParamsError
from ..data import readers
from ..data.images import ImageData
from ..pruning.scope import CAUSAL_LM_FAMILIES, FAMILIES, scope_problem
from . import entries
from .entries import config_path, user_corpora, user_models, user_tasks
from .sources import VISION_TYPES, SourceError

# where the Snakefile records what passed, beside Snakemake's own state (`essential-sparsity
# check` reads every entry)
STAMP = Path(".snakemake", "catalog-checked.json")
# the code a check runs: a change to it checks every entry again
CODE = ("essential_sparsity.catalog.entries", "essential_sparsity.data.readers",
        "essential_sparsity.data.splitting", "essential_sparsity.data.corpus", __name__)
# the sections that name models, and the model types each takes (None: any with a scope)
MODEL_SECTIONS = {"sources.models": None,
                  "llm.models": [t for t, family in FAMILIES.items()
                                 if family in CAUSAL_LM_FAMILIES],
                  "vision.models": list(VISION_TYPES)}


def check_catalog(params: dict, stamp: Path | None = None) -> None:
    """Every catalog entry the profile uses is here and usable, and the data section can split
    each task: one ParamsError line naming the entry and the fix, before any job runs. With a
    `stamp`, tasks and corpora recorded there as passed are not read again."""
    named = {key: params[key.split(".")[0]]["models"] for key in MODEL_SECTIONS}
    for name, entry in user_models(params, [n for names in named.values() for n in names]).items():
        _check_model(name, entry, [key for key, names in named.items() if name in names])
    passed, keys = _passed(stamp), []
    tasks = list(dict.fromkeys([*params["sources"]["tasks"], *params["vision"]["tasks"]]))
    for name, entry in user_tasks(params, tasks).items():
        keys.append(_key(entry, params["data"]))
        if keys[-1] not in passed:
            _check_task(name, entry, params["data"])
    for section, field in (("corpus", "sources"), ("pretrain", "corpus")):
        min_chars = params[section]["min_chars"]
        for name, entry in user_corpora(params, params[section][field]).items():
            keys.append(_key(entry, min_chars))
            if keys[-1] not in passed:
                _check_corpus(name, entry, section, min_chars)
    if stamp and keys:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        partial = stamp.with_name(f"{stamp.name}.{os.getpid()}")
        partial.write_text(json.dumps(sorted(key for key in keys if key)))
        partial.replace(stamp)


def _passed(stamp: Path | None) -> set[str]:
    """The keys recorded as passed; none when there is no stamp or it cannot be read."""
    try:
        return set(json.loads(stamp.read_text())) if stamp else set()
    except (OSError, ValueError, TypeError):
        return set()


def _key(entry: dict, settings) -> str | None:
    """What a check's outcome depends on, hashed; None when the entry's data are not all here."""
    files = readers.fingerprint(entry)
    if files is None:
        return None
    text = json.dumps([entry, settings, files, _code_digest()], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@functools.cache
def _code_digest() -> str:
    """The check's code, hashed once per process rather than once per entry."""
    digest = hashlib.sha256()
    for module in CODE:
        digest.update(Path(importlib.util.find_spec(module).origin).read_bytes())
    return digest.hexdigest()


def _check_task(name: str, entry: dict, data: dict) -> None:
    """The task reads, and the data section splits it."""
    from ..data.splitting import make_image_splits, make_splits

    try:
        source = entries.load_task(name, entry)
        split = make_image_splits if isinstance(source, ImageData) else make_splits
        split(source, data, data["seed"], f"catalog.tasks.{name}")
    except (SourceError, ValueError) as exc:
        raise ParamsError(str(exc)) from exc


def _check_corpus(name: str, entry: dict, section: str, min_chars: int) -> None:
    """The corpus reads into two or more documents: training and held-out text."""
    from ..data.corpus import corpus_documents

    try:
        documents = corpus_documents([name], min_chars, {name: entry})
    except SourceError as exc:
        raise ParamsError(str(exc)) from exc
    if len(documents) < 2:
        raise ParamsError(f"catalog.corpora.{name}: {len(documents)} distinct documents "
                          f"of at least {section}.min_chars = {min_chars} characters; "
                          f"training and held-out text need 2 or more: give it more text")


def _check_model(name: str, entry: dict, sections: list[str]) -> None:
    """The entry's config.json is here and names a family with a known scope, of a type each
    section naming it takes (a causal LM for llm.models, a ViT or DeiT for vision.models)."""
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
    for section in sections:
        types = MODEL_SECTIONS[section]
        if types is not None and model_type not in types:
            raise ParamsError(f"{where}: model_type {model_type!r} is not a type {section} "
                              f"takes ({', '.join(types)}); name it in sources.models instead")
