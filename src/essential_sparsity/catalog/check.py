"""The catalog's entries checked before any job runs: every model, task and corpus the profile
uses is here and usable (its files, columns and labels; its model family; enough examples for the
data section), or the build stops with one ParamsError line naming the entry and the fix. The
Snakefile and `essential-sparsity check` call it; no job does, so what it reads to check (splits,
corpora) is no job's code."""

from __future__ import annotations

import json

from ..config.params import ParamsError
from ..data.images import ImageData
from ..pruning.scope import CAUSAL_LM_FAMILIES, FAMILIES, scope_problem
from . import entries
from .entries import config_path, user_corpora, user_models, user_tasks
from .sources import SourceError


def check_catalog(params: dict) -> None:
    """Every catalog entry the profile uses is here and usable, and the data section can split
    each task: one ParamsError line naming the entry and the fix, before any job runs."""
    from ..data.corpus import corpus_documents
    from ..data.splitting import make_image_splits, make_splits

    causal = set(params["llm"]["models"])
    for name in dict.fromkeys([*params["sources"]["models"], *params["llm"]["models"]]):
        if name in user_models(params):
            _check_model(name, user_models(params)[name], causal_lm=name in causal)
    named = dict.fromkeys([*params["sources"]["tasks"], *params["vision"]["tasks"]])
    for name in [name for name in named if name in user_tasks(params)]:
        try:
            source = entries.load_task(name, user_tasks(params)[name])
            split = make_image_splits if isinstance(source, ImageData) else make_splits
            split(source, params["data"], params["data"]["seed"], f"catalog.tasks.{name}")
        except (SourceError, ValueError) as exc:
            raise ParamsError(str(exc)) from exc
    for section, field in (("corpus", "sources"), ("pretrain", "corpus")):
        min_chars = params[section]["min_chars"]
        for name in [name for name in params[section][field] if name in user_corpora(params)]:
            try:
                documents = corpus_documents([name], min_chars, user_corpora(params))
            except SourceError as exc:
                raise ParamsError(str(exc)) from exc
            if len(documents) < 2:
                raise ParamsError(f"catalog.corpora.{name}: {len(documents)} distinct documents "
                                  f"of at least {section}.min_chars = {min_chars} characters; "
                                  f"training and held-out text need 2 or more: give it more "
                                  f"text")


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
