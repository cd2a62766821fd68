"""params.yaml: every profile validates; a bad value stops everything with one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from essential_sparsity.config.levels import curve_seeds
from essential_sparsity.config.params import (
    SCHEMA_PATH,
    ParamsError,
    finetune_settings,
    load_params,
    read_yaml,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("profile", ["smoke", "default", "paper"])
def test_every_profile_validates(profile):
    params = load_params(ROOT / "params.yaml", profile)
    assert params["profile"] == profile
    assert 0.0 in params["prune"]["sparsities"]
    sections = [v for v in params.values() if isinstance(v, dict)]
    assert all("profiles" not in section for section in sections)


@pytest.mark.parametrize("path", [ROOT / "params.yaml", SCHEMA_PATH], ids=lambda p: p.name)
def test_the_strict_reader_reads_what_pyyamls_safe_loader_reads(path):
    """read_yaml parses with libyaml, for speed; the values are PyYAML's own."""
    assert read_yaml(path) == yaml.load(path.read_text(), Loader=yaml.SafeLoader)


def test_profile_overrides_only_its_keys():
    smoke = load_params(ROOT / "params.yaml", "smoke")
    default = load_params(ROOT / "params.yaml", "default")
    assert smoke["finetune"]["epochs"] == 1
    assert smoke["finetune"]["learning_rate"] == default["finetune"]["learning_rate"]


def test_paper_profile_has_figure_2s_models_and_squad_with_table_1_settings():
    params = load_params(ROOT / "params.yaml", "paper")
    assert params["sources"]["models"] == ["bert-base-uncased", "opt-125m", "opt-350m",
                                           "opt-1.3b"]
    assert params["sources"]["tasks"][-1] == "squad"
    squad = finetune_settings(params, "squad", "opt-350m")
    assert (squad["epochs"], squad["batch_size"], squad["learning_rate"]) == (3, 16, 3e-5)
    assert squad["max_length"] == 384 and squad["adam_epsilon"] == 1e-8
    assert finetune_settings(params, "mnli")["learning_rate"] == 2e-5


def test_figure_2s_dense_and_repeated_methods_take_every_seed_the_others_the_first():
    params = load_params(ROOT / "params.yaml", "default")
    assert params["finetune"]["repeats"]["methods"] == ["omp-global"]
    assert curve_seeds(params, "omp-global", "0") == [0, 1, 2]
    assert curve_seeds(params, "omp-global", "0.5") == [0, 1, 2]
    assert curve_seeds(params, "random", "0.5") == [0]
    assert curve_seeds(params, "nm-2-4", "0.5") == [0]
    smoke = load_params(ROOT / "params.yaml", "smoke")
    assert curve_seeds(smoke, "omp-global", "0") == [0]


def test_a_new_seed_changes_no_runs_settings():
    """Seeds pick which runs there are: adding one must not rerun the others."""
    params = load_params(ROOT / "params.yaml", "default")
    more = {**params, "finetune": {**params["finetune"], "seeds": [0, 7],
                                   "repeats": {"methods": [], "seeds": []}}}
    assert finetune_settings(more, "bbc-news") == finetune_settings(params, "bbc-news")


def _write(tmp_path, edit) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


BAD = [
    (lambda r: r["prune"]["sparsities"].append(1.0), "prune.sparsities.", "1.0"),
    (lambda r: r["prune"]["sparsities"].append(-0.1), "prune.sparsities.", "-0.1"),
    (lambda r: r["sources"].update(models=["gpt-9"]), "sources.models has", "gpt-9"),
    (lambda r: r["sources"].update(models=["opt-13b"]), "sources.models has", "opt-13b"),
    (lambda r: r["sources"].update(tasks=["imagenet"]), "sources.tasks has", "imagenet"),
    (lambda r: r["prune"].update(methods=["snip"]), "prune.methods.0", "snip"),
    (lambda r: r["finetune"].update(learning_rate=-1e-4), "finetune.learning_rate", "-0.0001"),
    (lambda r: r["finetune"].update(lerning_rate=1e-4), "finetune", "lerning_rate"),
    (lambda r: r["finetune"]["profiles"]["smoke"].update(epochs=0), "finetune.epochs", "0"),
    (lambda r: r["data"]["profiles"].update(smok={}), "data.profiles", "smok"),
    (lambda r: r["prune"].update(nm_patterns=["2-4"]), "prune.nm_patterns.0", "2-4"),
    (lambda r: r["prune"].update(nm_patterns=["5:4"]), "prune.nm_patterns", "5:4"),
    (lambda r: r["lth"].update(rate=1.5), "lth.rate", "1.5"),
    (lambda r: r["prune"].update(methods=["omp-global"]), "figures.fig02.methods", "random"),
    (lambda r: r["figures"]["fig09"].update(method="random"), "figures.fig09.method", "random"),
    (lambda r: r["finetune"]["repeats"].update(methods=["omp-layerwise"]),
     "finetune.repeats.methods", "omp-layerwise"),
    (lambda r: r["finetune"]["repeats"].update(seeds=[1, 1]), "finetune.repeats.seeds", "[1, 1]"),
]


@pytest.mark.parametrize(("edit", "key", "value"), BAD)
def test_bad_value_is_one_line_naming_key_and_value(tmp_path, edit, key, value):
    with pytest.raises(ParamsError) as info:
        load_params(_write(tmp_path, edit))
    message = str(info.value)
    assert "\n" not in message
    assert key in message and value in message


def test_cli_rejects_bad_params_before_any_work(tmp_path):
    path = _write(tmp_path, lambda r: r["finetune"].update(learning_rate=-1))
    out = tmp_path / "splits"
    result = subprocess.run([sys.executable, "-m", "essential_sparsity.cli.commands",
                             "--params", str(path),
                             "split", "--task", "bbc-news", "--out-dir", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "finetune.learning_rate" in result.stderr
    assert not out.exists()
