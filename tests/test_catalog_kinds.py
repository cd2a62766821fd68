"""Catalog tasks of the other kinds: extractive question answering from JSON Lines (SQuAD's
layout) and image classification from a folder of images per class, each read, checked and built
by params.yaml alone."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from catalog_data import QA_ENTRY, image_folder, notes, questions
from hub_fixtures import write_image_snapshot
from smoke import csv_dicts, set_profile, sh, smoke_repo
from test_catalog import reviews, task_file, write_params
from test_sources import use_cache

from essential_sparsity.catalog import entries
from essential_sparsity.catalog.check import check_catalog
from essential_sparsity.catalog.sources import SourceError
from essential_sparsity.config.params import ParamsError, load_params
from essential_sparsity.data.corpus import entry_documents
from essential_sparsity.data.image_hub import load_hub_task
from essential_sparsity.data.images import ImageData


def test_a_question_answering_entry_reads_squad_style_answers(tmp_path):
    task = entries.load_task("colours", {**QA_ENTRY, "files": {"train": str(questions(tmp_path))}})
    assert task.label_names == ["span"] and len(task.examples) == 240
    for row in task.examples.itertuples():
        start = row.answer_starts[0]
        assert row.text_pair[start:start + len(row.answer_texts[0])] == row.answer_texts[0]


def test_an_image_folder_entry_reads_its_classes_from_the_folders(tmp_path):
    folder = image_folder(tmp_path / "images", n=20)
    task = entries.load_task("shades", {"kind": "image", "files": {"train": str(folder)}})
    assert isinstance(task, ImageData) and task.label_names == ["bright", "dark"]
    assert task.images.shape == (20, 3, 10, 12) and task.images.dtype == np.uint8
    assert set(task.labels.tolist()) == {0, 1}
    bright = task.images[task.labels == 0].mean()
    assert bright > task.images[task.labels == 1].mean() + 100
    resized = entries.load_task("shades", {"kind": "image", "files": {"train": str(folder)},
                                           "side": 8})
    assert resized.images.shape == (20, 3, 8, 8)


def test_a_corpus_entry_reads_paragraphs_or_a_text_column(tmp_path):
    documents = entry_documents("notes", {"files": {"train": str(notes(tmp_path))}})
    assert len(documents) == 60 and documents[0].startswith("Note 0 says the red lamp")
    assert "\n" not in documents[0]  # a paragraph's lines, joined
    table = task_file(tmp_path, ".jsonl", reviews(30))
    documents = entry_documents("notes", {"files": {"train": str(table)}, "text": "review"})
    assert documents == reviews(30)["review"].tolist()


def corpus_params(tmp_path: Path, entry: dict) -> Path:
    path = write_params(tmp_path, {"corpora": {"notes": entry}})
    raw = yaml.safe_load(path.read_text())
    raw["corpus"]["sources"] = ["wordnet", "notes"]
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize(("entry", "line"), [
    ({"files": {"train": "nowhere.txt"}},
     r"catalog\.corpora\.notes: files\.train nowhere\.txt does not exist; fix the path"),
    ({"files": {"train": "{tmp}/notes.txt"}, "text": "body"},
     r"catalog\.corpora\.notes: train has no column 'body' \(its columns: text\); fix text"),
    ({"files": {"train": "{tmp}/short.txt"}},
     r"catalog\.corpora\.notes: 1 distinct documents of at least corpus\.min_chars = \d+ "
     r"characters; training and held-out text need 2 or more: give it more text"),
])
def test_a_bad_corpus_entry_stops_the_check_with_one_line(tmp_path, entry, line):
    notes(tmp_path)
    (tmp_path / "short.txt").write_text("One paragraph of text, long enough to count.\n")
    entry = {"files": {"train": entry["files"]["train"].format(tmp=tmp_path)},
             **{k: v for k, v in entry.items() if k != "files"}}
    with pytest.raises(ParamsError) as caught:
        check_catalog(load_params(corpus_params(tmp_path, entry)))
    assert re.search(line, str(caught.value)) and "\n" not in str(caught.value), caught.value


def test_a_corpus_neither_built_in_nor_in_the_catalog_is_named(tmp_path):
    path = corpus_params(tmp_path, {"files": {"train": "x.txt"}})
    path.write_text(path.read_text().replace("- notes", "- diaries"))
    with pytest.raises(ParamsError, match=r"corpus\.sources has 'diaries', which is neither "
                                          r"built in \(shakespeare, wordnet, bookcorpus\) nor an "
                                          r"entry of catalog\.corpora"):
        load_params(path)


def test_an_image_entry_reads_a_hub_data_set_from_the_offline_cache(tmp_path, monkeypatch):
    """CIFAR-10's layout (parquet files of {bytes, path} images) named as a catalog entry, its
    official test split kept; the decoded images are those the built-in reader decodes."""
    cache = tmp_path / "hub"
    write_image_snapshot(cache, tmp_path / "staging", "cifar10")
    use_cache(monkeypatch, cache)
    entry = {"kind": "image", "hub": "uoft-cs/cifar10", "data_dir": "plain_text", "image": "img",
             "test_split": "test"}
    task = entries.load_task("my-cifar", entry)
    builtin = load_hub_task("cifar10")
    assert task.images.shape == builtin.images.shape == (30, 3, 32, 32)
    assert np.array_equal(task.images, builtin.images)
    assert np.array_equal(task.fixed_test[0], builtin.fixed_test[0])
    assert task.label_names == [str(v) for v in sorted(set(builtin.labels.tolist()) |
                                                       set(builtin.fixed_test[1].tolist()))]


BAD = {
    "a question-answering entry without its answers column": (
        lambda t: {"colours": {**QA_ENTRY, "answers": "gold_answers",
                               "files": {"train": str(questions(t))}}},
        {"tasks": ["colours"]},
        r"catalog\.tasks\.colours: train has no column 'gold_answers' \(its columns: q, "
        r"passage, gold\); fix answers"),
    "a question-answering entry whose answer is not where it says": (
        lambda t: {"colours": {**QA_ENTRY, "files": {"train": str(questions(t, shift=1))}}},
        {"tasks": ["colours"]},
        r"catalog\.tasks\.colours: question 0 of train: answer 'red' is not at its "
        r"answer_start in the context; fix answers \(text and answer_start"),
    "images of two sizes without side": (
        lambda t: {"shades": {"kind": "image", "files": {"train": str(image_folder(
            t / "images", n=8, sizes=((10, 12), (9, 9))))}}},
        {"vision_tasks": ["shades"]},
        r"catalog\.tasks\.shades: train: \S+/images/\w+/\d+\.png is (9x9|12x10), not "
        r"(12x10|9x9); set side to resize every image to one size"),
    "an image task among the text tasks": (
        lambda t: {"shades": {"kind": "image", "files": {"train": str(t)}}},
        {"tasks": ["shades"]},
        r"sources\.tasks has 'shades', a task of kind image classification, but its figures "
        r"take text classification or extractive question answering tasks; name it in "
        r"vision\.tasks or set catalog\.tasks\.shades\.kind"),
    "a text task among the image tasks": (
        lambda t: {"reviews": {"text": "review", "label": "stars",
                               "files": {"train": str(task_file(t, ".csv", reviews()))}}},
        {"vision_tasks": ["reviews"]},
        r"vision\.tasks has 'reviews', a task of kind text classification, but its figures "
        r"take image classification tasks; name it in sources\.tasks"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_entry_of_another_kind_stops_the_check_with_one_line(tmp_path, case):
    make, names, line = BAD[case]
    with pytest.raises(ParamsError) as caught:
        check_catalog(load_params(write_params(tmp_path, {"tasks": make(tmp_path)}, **names)))
    assert re.search(line, str(caught.value)) and "\n" not in str(caught.value), caught.value


def test_a_question_answering_entry_without_its_answers_key_is_refused_by_the_schema(tmp_path):
    entry = {key: value for key, value in QA_ENTRY.items() if key != "answers"}
    path = write_params(tmp_path, {"tasks": {"colours": {**entry, "hub": "a/b"}}})
    with pytest.raises(ParamsError, match=r"catalog\.tasks\.colours.*'answers' is a required"):
        load_params(path)


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    folder = image_folder(tmp_path / "images", n=8)
    (folder / "dark" / "0000.png").write_bytes(b"not a png")
    with pytest.raises(SourceError, match=r"catalog\.tasks\.shades: train: \S+/dark/0000\.png "
                                          r"cannot be read as an image \(.*\); replace or remove "
                                          r"it"):
        entries.load_task("shades", {"kind": "image", "files": {"train": str(folder)}})


def test_a_checked_entry_is_read_again_only_when_its_files_change(tmp_path, monkeypatch):
    """Snakemake checks the catalog on every start; an image folder that passed is not decoded
    again until a file in it changes, and then its new problem is found."""
    from PIL import Image

    folder = image_folder(tmp_path / "images")
    params = load_params(write_params(
        tmp_path, {"tasks": {"shades": {"kind": "image", "files": {"train": str(folder)}}}},
        vision_tasks=["shades"]))
    reads, load = [], entries.load_task
    monkeypatch.setattr(entries, "load_task", lambda *args: reads.append(args[0]) or load(*args))
    stamp = tmp_path / "checked.json"
    check_catalog(params, stamp)
    check_catalog(params, stamp)
    assert reads == ["shades"]
    Image.new("RGB", (9, 9)).save(folder / "dark" / "odd.png")
    with pytest.raises(ParamsError, match=r"odd\.png is 9x9, not 12x10"):
        check_catalog(params, stamp)
    assert reads == ["shades", "shades"]
    (folder / "dark" / "odd.png").unlink()
    check_catalog(params)  # without a stamp, as `essential-sparsity check` runs it
    assert reads == ["shades", "shades", "shades"]


@pytest.mark.slow
def test_own_image_folder_and_vit_build_the_vision_figure(tmp_path):
    """An image folder named in vision.tasks and a ViT from a save_pretrained directory named in
    vision.models go through the vision transformers' runs, their tables and Figure 3 (the
    question-answering entry goes through Figure 2 in test_catalog)."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    vit = tmp_path / "my-vit"
    ViTModel(ViTConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=32, image_size=8, patch_size=4)).save_pretrained(vit)
    ViTImageProcessor(size={"height": 8, "width": 8}, image_mean=[0.5] * 3,
                      image_std=[0.5] * 3).save_pretrained(vit)
    repo = smoke_repo(tmp_path / "repo")
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["catalog"]["models"] = {"my-vit": {"path": str(vit), "objective": "supervised"}}
    raw["catalog"]["tasks"] = {
        "shades": {"kind": "image", "files": {"train": str(image_folder(tmp_path / "images"))}}}
    raw["vision"]["tasks"] = raw["vision"]["profiles"]["smoke"]["tasks"] = ["shades"]
    raw["vision"]["models"] = [*raw["vision"]["models"], "my-vit"]
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    set_profile(repo, "smoke")
    sh(sys.executable, "-m", "essential_sparsity.cli.worker", "snakemake", "--cores", "all",
       "fig03", cwd=repo)
    vision = csv_dicts(repo / "results/tables/vision_drop_vs_sparsity.csv")
    assert {row["task"] for row in vision} == {"shades"}
    assert {(row["model"], row["objective"]) for row in vision} == {
        ("vit-sl", "supervised"), ("vit-ssl", "dino"), ("my-vit", "supervised")}
    zeros = csv_dicts(repo / "results/tables/vision_zero_weights.csv")
    assert {row["layer"] for row in zeros if row["model"] == "my-vit"} == {"0", "1", "all"}
    assert (repo / "results/benchmarks/split_catalog_images/shades.tsv").is_file()
    assert (repo / "reports/figures/fig03_vision_drop_vs_sparsity.png").stat().st_size > 1000
