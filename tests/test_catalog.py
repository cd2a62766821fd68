"""A researcher's own encoder and tasks, by params.yaml's catalog alone: read, checked, built.

The encoder is a tiny BERT saved here with save_pretrained (the packaged MiniLM's tokenizer beside
it); the tasks are reviews written here as CSV, JSON Lines and parquet. Neither is known to any
other part of the project.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from catalog_data import QA_ENTRY, notes, questions
from conftest import tiny_bert_config
from hub_fixtures import GLUE_REPO, write_glue_snapshot
from smoke import csv_dicts, set_profile, sh, smoke_repo
from test_sources import use_cache

from essential_sparsity.catalog import entries
from essential_sparsity.catalog.check import check_catalog
from essential_sparsity.catalog.sources import SourceError
from essential_sparsity.config.params import ParamsError, load_params

ROOT = Path(__file__).resolve().parents[1]
WRITERS = {".csv": lambda f, p: f.to_csv(p, index=False),
           ".jsonl": lambda f, p: f.to_json(p, orient="records", lines=True),
           ".parquet": lambda f, p: f.to_parquet(p, index=False)}


def reviews(n: int = 240, offset: int = 0) -> pd.DataFrame:
    """Reviews whose words give away their stars (1 to 3), every text distinct."""
    words = {1: "awful broken poor", 2: "plain fine average", 3: "great superb lovely"}
    return pd.DataFrame({"review": [f"{words[1 + i % 3]} item {offset + i}" for i in range(n)],
                         "stars": [1 + i % 3 for i in range(n)]})


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory) -> Path:
    """A from_pretrained directory: a tiny BERT's config and safetensors, a real tokenizer."""
    import torch
    from transformers import BertModel

    from essential_sparsity.catalog.sources import Model, load_tokenizer

    tokenizer = load_tokenizer(Model("minilm-l6"))
    torch.manual_seed(0)
    model = BertModel(tiny_bert_config(vocab_size=len(tokenizer), max_position_embeddings=64))
    path = tmp_path_factory.mktemp("catalog") / "my-encoder"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def causal_lm_dir(tmp_path_factory) -> Path:
    """A from_pretrained directory of a tiny Llama and a word-level tokenizer (WordNet's and
    Shakespeare's words it lacks are its unknown token)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<|endoftext|>", "[UNK]", "the", "a", "of", "to", "and", "in", "is", "that", "or",
             "by", "with", "as", "for", "an", "not", "my", "thou", "thy", "lord", "love"]
    vocab = {word: i for i, word in enumerate(words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, vocab_size=len(vocab),
                         max_position_embeddings=512, bos_token_id=0, eos_token_id=0)
    path = tmp_path_factory.mktemp("catalog") / "my-lm"
    LlamaForCausalLM(config).save_pretrained(path)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>",
                            unk_token="[UNK]").save_pretrained(path)
    return path


def task_file(directory: Path, suffix: str, frame: pd.DataFrame | None = None,
              stem: str = "reviews") -> Path:
    """The reviews (or `frame`) as a file; a suffix with no writer gets CSV text."""
    path = directory / f"{stem}{suffix}"
    WRITERS.get(suffix, lambda f, p: p.write_text(f.to_csv(index=False)))(
        reviews() if frame is None else frame, path)
    return path


@pytest.mark.parametrize("suffix", list(WRITERS))
def test_a_task_reads_the_same_from_every_file_format(tmp_path, suffix):
    entry = {"files": {"train": str(task_file(tmp_path, suffix))}, "text": "review",
             "label": "stars"}
    task = entries.load_task("reviews", entry)
    assert task.label_names == ["1", "2", "3"]
    assert task.fixed_test is None
    expected = reviews()
    assert task.examples["text"].tolist() == expected["review"].tolist()
    assert task.examples["label"].tolist() == (expected["stars"] - 1).tolist()
    assert set(task.examples["text_pair"]) == {""}


def test_an_official_test_split_and_a_text_pair_are_kept(tmp_path):
    train = reviews().assign(context="a review")
    test = reviews(30, offset=1000).assign(context="another")
    entry = {"files": {"train": str(task_file(tmp_path, ".csv", train)),
                       "test": str(task_file(tmp_path, ".parquet", test, stem="test"))},
             "text": "review", "text_pair": "context", "label": "stars"}
    task = entries.load_task("reviews", entry)
    assert len(task.fixed_test) == 30
    assert set(task.examples["text_pair"]) == {"a review"}
    assert set(task.fixed_test["text_pair"]) == {"another"}


def test_a_hub_task_reads_its_folder_and_splits_from_the_offline_cache(tmp_path, monkeypatch):
    """GLUE's RTE in the hub's cache layout, as a catalog entry would name it."""
    write_glue_snapshot(tmp_path / "hub", tmp_path / "staging", tasks=("rte",))
    use_cache(monkeypatch, tmp_path / "hub")
    entry = {"hub": GLUE_REPO, "data_dir": "rte", "test_split": "validation",
             "text": "sentence1", "text_pair": "sentence2", "label": "label"}
    task = entries.load_task("rte", entry)
    assert (len(task.examples), len(task.fixed_test)) == (40, 24)
    assert task.label_names == ["entailment", "not_entailment"]  # the files' ClassLabel
    assert (task.examples["text_pair"] != "").all()
    with pytest.raises(SourceError, match=r"catalog\.tasks\.rte: test has no labelled rows"):
        entries.load_task("rte", {**entry, "test_split": "test"})  # labels -1, as on GLUE


def write_params(tmp_path: Path, catalog_section: dict, models: list[str] | None = None,
                 tasks: list[str] | None = None, llm_models: list[str] | None = None,
                 vision_tasks: list[str] | None = None,
                 vision_models: list[str] | None = None) -> Path:
    """The project's params.yaml on the smoke profile, with a catalog and the sources (and the
    causal LMs and image tasks) naming it."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["profile"] = "smoke"
    raw["catalog"] = {"models": {}, "tasks": {}, **catalog_section}
    raw["sources"]["models"] = models or ["minilm-l6"]
    raw["sources"]["tasks"] = tasks or ["bbc-news"]
    raw["llm"]["models"] = llm_models or raw["llm"]["models"]
    if vision_tasks:  # the smoke profile names its own
        raw["vision"]["tasks"] = raw["vision"]["profiles"]["smoke"]["tasks"] = vision_tasks
    raw["vision"]["models"] = vision_models or raw["vision"]["models"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def bad_task(tmp_path: Path, **entry) -> dict:
    return {"tasks": {"reviews": {"text": "review", "label": "stars", **entry}}}


BAD = {
    "a path that does not exist": (
        lambda t: bad_task(t, files={"train": str(t / "nowhere.csv")}), ["reviews"],
        r"catalog\.tasks\.reviews: files\.train .*nowhere\.csv does not exist; fix the path"),
    "a format not supported": (
        lambda t: bad_task(t, files={"train": str(task_file(t, ".txt"))}), ["reviews"],
        r"catalog\.tasks\.reviews: .*reviews\.txt is not a supported format \(supported: "
        r"\.csv, .*\); convert it to one"),
    "a named column missing": (
        lambda t: bad_task(t, files={"train": str(task_file(t, ".csv"))}, text="body"),
        ["reviews"], r"catalog\.tasks\.reviews: train has no column 'body' \(its columns: "
        r"review, stars\); fix text"),
    "a label column with one class": (
        lambda t: bad_task(t, files={"train": str(task_file(
            t, ".csv", reviews().assign(stars=5)))}), ["reviews"],
        r"catalog\.tasks\.reviews: the label column 'stars' has one class \(5\); a classifier "
        r"needs two or more"),
    "a label column with missing values": (
        lambda t: bad_task(t, files={"train": str(task_file(
            t, ".parquet", reviews().astype({"stars": "float"}).assign(
                stars=lambda f: f["stars"].where(f.index % 50 > 0))))}), ["reviews"],
        r"catalog\.tasks\.reviews: the label column 'stars' of train has 5 missing values; "
        r"fill or drop those rows"),
    "an empty split": (
        lambda t: bad_task(t, files={"train": str(task_file(t, ".csv")),
                                        "test": str(task_file(t, ".csv", reviews().head(0),
                                                              stem="test"))}),
        ["reviews"], r"catalog\.tasks\.reviews: test has no rows; give it examples"),
    "too few examples for the data section": (
        lambda t: bad_task(t, files={"train": str(task_file(t, ".csv", reviews(60)))}),
        ["reviews"], r"catalog\.tasks\.reviews: 60 usable examples cannot fill data\.train_size"),
    "a hub data set not in the cache while offline": (
        lambda t: bad_task(t, hub="someone/no-such-reviews"), ["reviews"],
        r"catalog\.tasks\.reviews: data set someone/no-such-reviews is not in the Hugging Face "
        r"cache and the hub is offline; .*\(hf download --repo-type dataset "
        r"someone/no-such-reviews\)"),
}
BAD_MODELS = {
    "a model path that does not exist": (
        lambda t: {"models": {"mine": {"path": str(t / "nowhere")}}},
        r"catalog\.models\.mine: path .*nowhere does not exist"),
    "a model directory without config.json": (
        lambda t: {"models": {"mine": {"path": str(t)}}},
        r"catalog\.models\.mine: .* has no config\.json; point path at a directory that "
        r"save_pretrained wrote"),
    "an architecture with no known scope": (
        lambda t: {"models": {"mine": {"path": str(bloom_dir(t))}}},
        r"catalog\.models\.mine: no pruning scope is defined for model_type 'bloom' \(supported: "
        r"bert, .*\)"),
    "a hub model not in the cache while offline": (
        lambda t: {"models": {"mine": {"hub": "someone/no-such-model"}}},
        r"catalog\.models\.mine: hub model someone/no-such-model is not in the Hugging Face "
        r"cache .*\(hf download someone/no-such-model\)"),
}


def bloom_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bloom"
    path.mkdir()
    (path / "config.json").write_text('{"model_type": "bloom"}')
    return path


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_task_entry_stops_the_check_with_one_line(tmp_path, case):
    make, tasks, line = BAD[case]
    path = write_params(tmp_path, make(tmp_path), tasks=tasks)
    with pytest.raises(ParamsError) as caught:
        check_catalog(load_params(path))
    assert re.search(line, str(caught.value)) and "\n" not in str(caught.value), caught.value


@pytest.mark.parametrize("case", list(BAD_MODELS))
def test_a_bad_model_entry_stops_the_check_with_one_line(tmp_path, case):
    make, line = BAD_MODELS[case]
    path = write_params(tmp_path, make(tmp_path), models=["mine"])
    with pytest.raises(ParamsError) as caught:
        check_catalog(load_params(path))
    assert re.search(line, str(caught.value)) and "\n" not in str(caught.value), caught.value


@pytest.mark.parametrize(("names", "types"), [
    ({"llm_models": ["mine"]}, r"llm\.models takes \(opt, gpt2, llama, mistral, qwen2\)"),
    ({"vision_models": ["vit-sl", "vit-ssl", "mine"]}, r"vision\.models takes \(vit, deit\)")])
def test_an_encoder_named_as_a_causal_lm_or_a_vit_stops_the_check_with_one_line(
        tmp_path, encoder_dir, names, types):
    path = write_params(tmp_path, {"models": {"mine": {"path": str(encoder_dir)}}}, **names)
    with pytest.raises(ParamsError) as caught:
        check_catalog(load_params(path))
    assert re.fullmatch(rf"catalog\.models\.mine: model_type 'bert' is not a type {types}; name "
                        rf"it in sources\.models instead", str(caught.value)), caught.value


@pytest.mark.parametrize(("section", "names", "line"), [
    ({}, {"tasks": ["reviews"]}, r"sources\.tasks has 'reviews', which is neither built in "
     r"\(bbc-news, .*\) nor an entry of catalog\.tasks; add it under catalog\.tasks"),
    ({"models": {"minilm-l6": {"path": "/x"}}}, {}, r"catalog\.models\.minilm-l6 has the name "
     r"of a built-in model; rename the entry"),
    ({"models": {"My_Encoder": {"path": "/x"}}}, {}, r"catalog\.models"),
    ({}, {"llm_models": ["my-lm"]}, r"llm\.models has 'my-lm', which is neither built in "
     r"\(smollm2-135m, .*\) nor an entry of catalog\.models; add it under catalog\.models"),
    ({"models": {"smollm2-135m": {"path": "/x"}}}, {}, r"catalog\.models\.smollm2-135m has the "
     r"name of a built-in model; rename the entry"),
])
def test_names_are_checked_when_params_load(tmp_path, section, names, line):
    path = write_params(tmp_path, section, **names)
    with pytest.raises(ParamsError, match=line):
        load_params(path)


def test_sources_lists_the_catalog_and_what_is_missing(tmp_path, encoder_dir):
    section = {"models": {"my-encoder": {"path": str(encoder_dir)}},
               **bad_task(tmp_path, files={"train": str(tmp_path / "gone.csv")}),
               "corpora": {"notes": {"files": {"train": str(notes(tmp_path))}}}}
    section["tasks"]["shades"] = {"kind": "image", "files": {"train": str(tmp_path)}}
    path = write_params(tmp_path, section)
    listed = sh("essential-sparsity", "--params", str(path), "sources", cwd=tmp_path).stdout
    assert re.search(rf"model +my-encoder +catalog {encoder_dir} +installed", listed), listed
    assert re.search(r"task +reviews +catalog .*gone\.csv +MISSING: fix catalog\.tasks\.reviews"
                     r"\.files", listed), listed
    assert re.search(rf"task +shades +catalog {tmp_path} +installed", listed), listed
    assert re.search(r"corpus +notes +catalog .*notes\.txt +installed", listed), listed


def test_the_cli_and_snakemake_stop_on_a_bad_entry_before_any_job(tmp_path):
    repo = smoke_repo(tmp_path / "repo")
    params = write_params(tmp_path, bad_task(tmp_path, files={"train": str(tmp_path / "x.csv")}),
                          tasks=["reviews"])
    (repo / "params.yaml").write_text(params.read_text())
    check = sh("essential-sparsity", "check", cwd=repo, check=False)
    dry = sh("snakemake", "-n", cwd=repo, check=False)
    for result in (check, dry):
        assert result.returncode != 0
        assert "catalog.tasks.reviews: files.train" in result.stderr, result.stderr
    assert not (repo / "results").exists()


@pytest.mark.slow
def test_own_encoder_and_tasks_from_three_formats_build_figure_2(tmp_path, encoder_dir):
    """The README's promise: a local encoder and a task from each file format, named in
    params.yaml alone, go through prune, fine-tune, the tables and Figure 2; so does a
    question-answering task from JSON Lines."""
    repo = smoke_repo(tmp_path / "repo")
    files = {suffix[1:]: task_file(tmp_path, suffix) for suffix in WRITERS}
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["catalog"] = {"models": {"my-encoder": {"path": str(encoder_dir)}},
                      "tasks": {f"reviews-{name}": {"files": {"train": str(path)},
                                                    "text": "review", "label": "stars"}
                                for name, path in files.items()}}
    raw["catalog"]["tasks"]["colours"] = {**QA_ENTRY, "files": {"train": str(questions(tmp_path))}}
    raw["sources"] = {"models": ["my-encoder"],
                      "tasks": [*(f"reviews-{n}" for n in files), "colours"]}
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    set_profile(repo, "smoke")
    sh(sys.executable, "-m", "essential_sparsity.cli.worker", "snakemake", "--cores", "all",
       "fig02", cwd=repo)
    assert (repo / "reports/figures/fig02_drop_vs_sparsity.png").stat().st_size > 1000
    essential = csv_dicts(repo / "results/tables/essential_sparsity.csv")
    assert {(row["model"], row["task"]) for row in essential} == {
        ("my-encoder", f"reviews-{name}") for name in files} | {("my-encoder", "colours")}
    run = next((repo / "results/finetune/my-encoder/colours").glob("*/*/seed-*/metrics.json"))
    assert json.loads(run.read_text())["metric"] == "f1"  # the QA entry, scored as SQuAD is
    for name in files:
        assert (repo / f"results/benchmarks/split_catalog_task/reviews-{name}.tsv").is_file()
        meta = yaml.safe_load((repo / f"results/data/reviews-{name}/meta.json").read_text())
        assert meta["label_names"] == ["1", "2", "3"]


@pytest.mark.parametrize(("edit", "line"), [
    (lambda c: c["tasks"]["mnli"].pop("test_split"),
     r"catalog\.yaml: tasks\.mnli: .* is not valid under any of the given schemas; fix it as "
     r"catalog\.schema\.yaml says"),
    (lambda c: c["models"]["minilm-l6"].update(hub="not a repo id"),
     r"catalog\.yaml: models\.minilm-l6\.hub: 'not a repo id' does not match .*; fix it as "
     r"catalog\.schema\.yaml says"),
    (lambda c: c.update(extra={}),
     r"catalog\.yaml: the top level: Additional properties are not allowed \('extra' was "
     r"unexpected\); fix it as catalog\.schema\.yaml says"),
])
def test_a_bad_built_in_entry_stops_with_one_line(tmp_path, monkeypatch, edit, line):
    """The built-in catalog is data: a mistyped entry stops every command with one line, and
    the shipped file is valid (the module loaded it)."""
    from essential_sparsity.catalog import builtin

    catalog = yaml.safe_load(builtin.CATALOG_FILE.read_text())
    edit(catalog)
    monkeypatch.setattr(builtin, "CATALOG_FILE", tmp_path / "catalog.yaml")
    builtin.CATALOG_FILE.write_text(yaml.safe_dump(catalog))
    with pytest.raises(ParamsError) as caught:
        builtin.load_builtin()
    assert re.search(line, str(caught.value)) and "\n" not in str(caught.value), caught.value


def test_every_built_in_name_is_an_entry_of_the_data_file():
    """The schema's enums of built-in names and the task kinds come from workflow/catalog.yaml."""
    from essential_sparsity.catalog.builtin import BUILTIN
    from essential_sparsity.catalog.tasks import task
    from essential_sparsity.config.params import _schema

    names = _schema()["$defs"]
    assert names["model"]["enum"] == [name for name in BUILTIN["models"]
                                      if name not in BUILTIN["vision_models"]]
    assert set(names["image_task"]["enum"]) == {
        name for name, entry in BUILTIN["tasks"].items() if entry["kind"] == "image"}
    assert task("squad").metric == "f1" and task("bbc-news").metric == "accuracy"
    assert not task("cifar10").encoded


def test_the_catalog_names_exactly_the_image_and_arithmetic_tasks_the_data_modules_read():
    from essential_sparsity.catalog.tasks import (
        ARITHMETIC_TASKS,
        GENERATED_ARITHMETIC_TASKS,
        IMAGE_TASKS,
    )
    from essential_sparsity.data import images, math_hub

    assert set(IMAGE_TASKS) == {*images.FASHION_TASKS, "digits", *images.HUB_TASKS}
    assert set(ARITHMETIC_TASKS) == {*GENERATED_ARITHMETIC_TASKS, *math_hub.MATH_HUB_TASKS}


@pytest.mark.slow
def test_own_causal_lm_builds_figure_11(tmp_path, causal_lm_dir):
    """A causal LM from a local from_pretrained directory, named in params.yaml alone, is pruned
    by every method, calibrated on and scored against a plain-text file of the catalog, and
    evaluated zero-shot into Figure 11's table and figure."""
    repo = smoke_repo(tmp_path / "repo")
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["catalog"]["models"] = {"my-lm": {"path": str(causal_lm_dir)}}
    raw["catalog"]["corpora"] = {"notes": {"files": {"train": str(notes(tmp_path))}}}
    raw["llm"]["models"] = ["my-lm"]
    raw["corpus"]["sources"] = ["notes"]
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    sh(sys.executable, "-m", "essential_sparsity.cli.worker", "snakemake", "--cores", "all",
       "fig11", cwd=repo)
    assert (repo / "reports/figures/fig11_llm_one_shot.png").stat().st_size > 1000
    table = csv_dicts(repo / "results/tables/llm_zero_shot.csv")
    params = load_params(repo / "params.yaml")
    assert {row["model"] for row in table} == {"my-lm"}
    assert {row["method"] for row in table} >= set(params["llm"]["methods"])
    assert not (repo / "results/llm/my-lm/dense").exists()  # read from its directory as it is
    meta = json.loads((repo / "results/corpus/meta.json").read_text())
    assert meta["corpora"] == raw["catalog"]["corpora"]
    assert sum(meta["documents"].values()) == 60  # the file's paragraphs
