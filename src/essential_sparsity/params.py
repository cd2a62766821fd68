"""params.yaml: load, merge the chosen profile, validate against the schema.

Everything downstream (Snakefile, CLI, notebooks) reads its knobs through `load_params`, so a
bad value is caught once, before any job starts, with one line that says what to fix.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = PROJECT_ROOT / "workflow" / "schemas" / "params.schema.yaml"
PROFILES = ("smoke", "default", "paper")


class ParamsError(ValueError):
    """A params.yaml problem, phrased as one line naming the key, the value and the fix."""


def deep_merge(base: dict, overlay: dict) -> dict:
    """Nested dicts merge key by key; anything else in `overlay` replaces the base value."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@functools.cache
def _schema() -> dict:
    """Read once per process: params.yaml is validated for every profile, by every job."""
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _allowed(error: jsonschema.ValidationError) -> str:
    schema = error.schema
    if "enum" in schema:
        return "allowed: " + ", ".join(map(str, schema["enum"]))
    if error.validator == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        return "known keys: " + ", ".join(known) if known else ""
    bounds = [f"{k} {schema[k]}" for k in
              ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum") if k in schema]
    return "allowed: " + ", ".join(bounds) if bounds else ""


def _describe(error: jsonschema.ValidationError, source: str, profile: str) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    value = error.instance if not isinstance(error.instance, dict) else "{...}"
    allowed = _allowed(error)
    line = f"{source} [profile {profile}]: {key} = {value!r}: {error.message}"
    return line + (f" ({allowed})" if allowed else "") + f"; fix {key} in {source}"


def apply_profile(raw: dict, profile: str, source: str = "params.yaml") -> dict:
    """Each section's values with its `profiles[profile]` merged in and `profiles` removed."""
    merged = {}
    for key, value in raw.items():
        if isinstance(value, dict) and "profiles" in value:
            overlays = value["profiles"] or {}
            if not isinstance(overlays, dict) or set(overlays) - set(PROFILES):
                raise ParamsError(f"{source}: {key}.profiles must map profile names "
                                  f"({', '.join(PROFILES)}) to overrides; got {overlays!r}")
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
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(merged), key=lambda e: list(e.absolute_path))
    if errors:
        raise ParamsError(_describe(jsonschema.exceptions.best_match(errors), source, profile))
    _check_across_keys(merged, f"{source} [profile {profile}]", source)
    return merged


def _check_across_keys(params: dict, where: str, source: str) -> None:
    """What the schema cannot say: N:M patterns with N <= M, figures drawing pruned methods,
    a pre-trained model's heads dividing its width, data fractions with distinct names."""
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
    _check_vision(params["vision"], where, source)
    methods = params["prune"]["methods"]
    drawn = [("figures.fig02.methods", m) for m in params["figures"]["fig02"]["methods"]]
    drawn += [(f"figures.{fig}.method", params["figures"][fig]["method"])
              for fig in ("fig09", "fig10")]
    for key, method in drawn:
        if method not in methods:
            raise ParamsError(f"{where}: {key} = {method!r} is not pruned (prune.methods: "
                              f"{', '.join(methods)}); add it there or fix {key} in {source}")


def _check_vision(vision: dict, where: str, source: str) -> None:
    """The compared pair is fine-tuned and has one objective each; the supervised pre-training
    task is not a downstream task; the ViT's sizes fit together."""
    from .levels import VISION_OBJECTIVES

    for key, objective in (("supervised", "supervised"), ("self_supervised", "dino")):
        model = vision[key]
        if model not in vision["models"] or VISION_OBJECTIVES[model] != objective:
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


def load_params(path: str | Path = "params.yaml", profile: str | None = None) -> dict:
    """Read params.yaml and return the validated settings of `profile` (default: its `profile:`).

    Every profile is validated, not only the chosen one, so a typo in the paper profile is caught
    on a laptop.
    """
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: not found; run from the project root or pass --params PATH")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc}); fix the syntax") from exc
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    chosen = resolve(raw, profile or raw.get("profile", "default"), str(path))
    for other in PROFILES:
        resolve(raw, other, str(path))
    return chosen


def finetune_settings(params: dict, task: str, model: str | None = None) -> dict[str, Any]:
    """The fine-tuning settings of one task: the section's values, vision.finetune's for an image
    task or arithmetic.finetune's for an arithmetic one, the task's per_task overrides, and for a
    model pre-trained from scratch (scratch-<percent>) pretrain.finetune's on top."""
    from .arithmetic import ARITHMETIC_TASKS
    from .images import is_image_task
    from .levels import pretrain_models  # levels imports this module

    settings = {k: v for k, v in params["finetune"].items() if k != "per_task"}
    if is_image_task(task):
        settings.update(params["vision"]["finetune"])
    if task in ARITHMETIC_TASKS:
        settings.update(params["arithmetic"]["finetune"])
    settings.update(params["finetune"]["per_task"].get(task, {}))
    if model in pretrain_models(params):
        settings.update(params["pretrain"]["finetune"])
    return settings


def format_sparsity(sparsity: float) -> str:
    """The canonical spelling of a sparsity in paths and tables: 0, 0.2, 0.215."""
    return f"{float(sparsity):g}"
