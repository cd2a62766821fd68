"""SQuAD v1.1 (Table 1's F1): the official script's scores, span labels and decoding, the hub
loader on a local rajpurkar/squad in the hub's cache layout, and sparse fine-tuning of a span
predictor end to end (tests/hub_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hub_fixtures import (
    SQUAD_FILES,
    SQUAD_LEAD,
    SQUAD_REPO,
    build_cache,
    opt_tokenizer,
    repo_dir,
    write_opt_and_squad_snapshots,
)
from test_sources import use_cache

from essential_sparsity.catalog import sources
from essential_sparsity.config.params import (
    encode_settings,
    finetune_settings,
    load_params,
    prune_settings,
    split_settings,
)
from essential_sparsity.data import splitting
from essential_sparsity.pruning import masks
from essential_sparsity.records.io import read_json, read_tensors, write_json
from essential_sparsity.stages.encode import encode_task
from essential_sparsity.stages.finetune import finetune_run
from essential_sparsity.stages.prune import prune
from essential_sparsity.stages.split import split_task
from essential_sparsity.training import qa

ROOT = Path(__file__).resolve().parents[1]


# --- the official scores, checked by hand --------------------------------------------------------

@pytest.mark.parametrize(("text", "normal"), [
    ("The Denver Broncos!", "denver broncos"),
    ("  Super   Bowl 50. ", "super bowl 50"),
    ("U.S.", "us"),
    ("Theodore and an apple", "theodore and apple"),   # articles only as whole words
    ("a an the", ""),
])
def test_normalize_answer_is_the_official_scripts(text, normal):
    assert qa.normalize_answer(text) == normal


@pytest.mark.parametrize(("prediction", "gold", "f1", "em"), [
    ("the Denver Broncos", "Denver Broncos", 1.0, 1.0),
    ("Broncos won", "Denver Broncos", 0.5, 0.0),          # 1 shared of 2 and 2: P = R = 1/2
    ("Denver Broncos team", "Broncos", 0.5, 0.0),         # P = 1/3, R = 1: 2PR/(P+R) = 1/2
    ("Denver Broncos team", "Denver Broncos", 0.8, 0.0),  # P = 2/3, R = 1: 0.8
    ("cat cat cat", "the cat", 0.5, 0.0),                 # a gold token is matched once
    ("Carolina Panthers.", "carolina panthers", 1.0, 1.0),
    ("", "Denver Broncos", 0.0, 0.0),
    ("Theodore", "odore", 0.0, 0.0),
])
def test_f1_and_exact_match_of_one_pair(prediction, gold, f1, em):
    assert qa.f1_score(prediction, gold) == pytest.approx(f1)
    assert qa.exact_match(prediction, gold) == em


def test_squad_scores_take_each_examples_best_gold_and_average_in_percent():
    predictions = ["Denver Broncos team", "Broncos won", "the Carolina Panthers."]
    golds = [["Broncos", "Denver Broncos"], ["Denver Broncos"], ["Carolina Panthers", "Panthers"]]
    per_example = qa.squad_per_example(predictions, golds)
    assert per_example["f1"] == pytest.approx([0.8, 0.5, 1.0])
    assert per_example["exact_match"] == [0, 0, 1]
    scores = qa.squad_scores(per_example)
    assert scores["f1"] == pytest.approx(100 * (0.8 + 0.5 + 1.0) / 3)
    assert scores["exact_match"] == pytest.approx(100 / 3)


# --- span labels and decoding --------------------------------------------------------------------

def test_answer_tokens_cover_the_answer_or_say_it_was_cut_off():
    # tokens: [CLS] q [SEP] c0 c1 c2 [SEP]; the context tokens cover characters 0-4, 5-8, 9-12
    offsets = np.array([[0, 0], [0, 3], [0, 0], [0, 4], [5, 8], [9, 12], [0, 0]])
    context = np.array([False, False, False, True, True, True, False])
    assert qa.answer_tokens(offsets, context, 5, 8) == (4, 4)
    assert qa.answer_tokens(offsets, context, 6, 12) == (4, 5)   # inside a token: the whole one
    assert qa.answer_tokens(offsets, context, 0, 12) == (3, 5)
    assert qa.answer_tokens(offsets, context, 9, 15) == qa.NO_ANSWER   # truncated after 12


def test_best_spans_is_the_best_valid_pair():
    generator = torch.Generator().manual_seed(0)
    start, end = torch.randn(20, 9, generator=generator), torch.randn(20, 9, generator=generator)
    inside = torch.rand(20, 9, generator=generator) > 0.3
    inside[:, 4] = True   # every row has a context token
    first, last = qa.best_spans(start, end, inside, max_tokens=3)
    for row in range(20):
        pairs = [(start[row, i] + end[row, j], i, j) for i in range(9) for j in range(i, i + 3)
                 if j < 9 and inside[row, i] and inside[row, j]]
        _, i, j = max(pairs)
        assert (int(first[row]), int(last[row])) == (i, j)


@pytest.fixture(scope="module")
def squad_cache(tmp_path_factory):
    return build_cache(tmp_path_factory, "hf-squad", write_opt_and_squad_snapshots)


@pytest.fixture
def hub(squad_cache, monkeypatch):
    use_cache(monkeypatch, squad_cache)


def tokenizers() -> dict:
    """BERT's word pieces (the packaged MiniLM, lower-casing) and OPT's byte-level BPE."""
    return {"wordpiece": sources.load_tokenizer(sources.Model("minilm-l6")),
            "byte-level": opt_tokenizer()}


@pytest.mark.parametrize(("kind", "max_length"), [("wordpiece", 12), ("byte-level", 44)])
def test_decoding_the_labels_gives_back_the_answer(hub, kind, max_length):
    """Logits peaked at the labelled tokens decode to the gold answer's exact characters; a
    label at NO_ANSWER is an answer truncation really cut off."""
    frame = sources.load_task("squad").examples
    encoded = qa.encode(tokenizers()[kind], frame, max_length)
    rows = torch.arange(len(frame))
    start = torch.zeros(encoded["input_ids"].shape).index_put_(
        (rows, encoded["start_positions"]), torch.tensor(10.0))
    end = torch.zeros(encoded["input_ids"].shape).index_put_(
        (rows, encoded["end_positions"]), torch.tensor(10.0))
    decoded = qa.predictions(encoded, start, end, frame["text_pair"].tolist())
    cut = encoded["start_positions"] == 0
    assert 0 < int(cut.sum()) < len(frame)   # truncation cuts some answers off, not all
    for i in range(len(frame)):
        answer, offset = frame["answer_texts"][i][0], frame["answer_starts"][i][0]
        if cut[i]:
            assert int(encoded["char_end"][i].max()) < offset + len(answer)
        else:
            assert decoded[i] == answer


def test_model_inputs_drop_the_character_spans(hub):
    encoded = qa.encode(opt_tokenizer(), sources.load_task("squad").examples.head(4), 32)
    assert set(qa.model_inputs(encoded)) == {"input_ids", "attention_mask", "start_positions",
                                             "end_positions"}


# --- the hub loader -------------------------------------------------------------------------------

def test_squad_loads_from_the_hub_cache(hub, squad_cache):
    import pandas as pd

    (snapshot,) = (repo_dir(squad_cache, SQUAD_REPO, "dataset") / "snapshots").iterdir()
    task = sources.load_task("squad")
    assert task.label_names == sources.QA_LABELS
    for frame, split in ((task.examples, "train"), (task.fixed_test, "validation")):
        raw = pd.read_parquet(snapshot / SQUAD_FILES[split])
        assert list(frame.columns) == ["text", "text_pair", "label", "answer_texts",
                                       "answer_starts"]
        assert frame["text"].tolist() == raw["question"].tolist()
        assert frame["text_pair"].tolist() == raw["context"].str.strip().tolist()
        assert (frame["label"] == 0).all()
        assert [len(a) for a in frame["answer_texts"]] == [len(a["text"]) for a in raw["answers"]]
        for context, texts, starts in zip(frame["text_pair"], frame["answer_texts"],
                                          frame["answer_starts"], strict=True):
            assert [context[s:s + len(t)] for t, s in zip(texts, starts, strict=True)] == texts
    assert raw["context"].str.startswith(SQUAD_LEAD).any()   # offsets were shifted
    assert task.fixed_test["answer_texts"].map(len).max() == 3


def test_missing_squad_names_file_and_command(empty_hub_cache):
    with pytest.raises(sources.SourceError) as err:
        sources.load_task("squad")
    assert "\n" not in str(err.value)
    assert (f"hf download --repo-type dataset {SQUAD_REPO} {SQUAD_FILES['train']}"
            in str(err.value))


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    use_cache(monkeypatch, tmp_path / "hub")


def test_sources_list_squad_from_the_hub():
    (row,) = [r for r in sources.available_sources() if r["name"] == "squad"]
    assert row == {"kind": "task", "name": "squad", "source": f"hub {SQUAD_REPO}",
                   "installed": True}


def paper_params(validation_size: int = 8) -> dict:
    """The paper profile at the fixture's scale: SQuAD fine-tuned 1 epoch at 64 tokens."""
    params = load_params(ROOT / "params.yaml", "paper")
    params["data"]["validation_size"] = validation_size
    params["finetune"].update(eval_batch_size=8, threads=1,
                              per_task={"squad": {"epochs": 1, "batch_size": 8,
                                                  "learning_rate": 1e-3, "max_length": 64}})
    return params


def test_splits_keep_the_answers_and_the_official_validation_as_test(hub, tmp_path):
    params = paper_params()
    split_task(split_settings(params, "squad"), "squad", tmp_path)
    task = sources.load_task("squad")
    splits = {s: splitting.read_split(tmp_path, s) for s in splitting.SPLITS}
    assert [len(splits[s]) for s in splitting.SPLITS] == [32, 8, 12]
    assert splits["test"]["text"].tolist() == task.fixed_test["text"].tolist()
    assert splits["test"]["answer_texts"].tolist() == task.fixed_test["answer_texts"].tolist()
    assert not set(splits["train"]["text"]) & set(splits["validation"]["text"])
    by_question = task.examples.set_index("text")
    for row in splits["train"].itertuples():
        assert row.answer_starts == by_question.loc[row.text, "answer_starts"]
    meta = read_json(tmp_path / "meta.json")
    assert meta["label_names"] == ["span"] and meta["sizes"]["test"] == 12


# --- sparse fine-tuning end to end ---------------------------------------------------------------

@pytest.fixture(scope="module")
def qa_runs(squad_cache, tmp_path_factory):
    """A span predictor fine-tuned on the fixture's SQuAD under a 50% OMP mask: the fixture's
    OPT (from the hub cache) and the packaged MiniLM (a BERT)."""
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    tmp = tmp_path_factory.mktemp("qa")
    with pytest.MonkeyPatch.context() as patch:
        use_cache(patch, squad_cache)
        params = paper_params()
        split_task(split_settings(params, "squad"), "squad", tmp / "data")
        runs = {}
        for model in ("opt-125m", "minilm-l6"):
            run = tmp / model
            prune(prune_settings(params), sources.Model(model), "omp-global", 0.5,
                  run / "mask.safetensors")
            encode_task(encode_settings(params, "squad", model), sources.Model(model), "squad",
                        tmp / "data", run / "squad.safetensors")
            record = finetune_run(finetune_settings(params, "squad", model),
                                  params["resources"]["device"], sources.Model(model), "squad",
                                  run / "mask.safetensors", 0, tmp / "data",
                                  run / "metrics.json", run / "model.safetensors",
                                  encoded_path=run / "squad.safetensors",
                                  predictions_path=run / "predictions.csv")
            runs[model] = (record, masks.load_mask(run / "mask.safetensors"),
                           read_tensors(run / "model.safetensors"),
                           pd.read_csv(run / "predictions.csv"))
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)
    return runs


@pytest.mark.parametrize(("model", "prefix"), [("opt-125m", "model."), ("minilm-l6", "bert.")])
def test_span_predictor_fine_tunes_under_the_mask(qa_runs, model, prefix):
    record, mask, checkpoint, _ = qa_runs[model]
    assert record["metric"] == "f1" and record["task"] == "squad"
    assert 0 <= record["value"] <= 100 and 0 <= record["exact_match"] <= record["value"]
    assert 0 <= record["validation_value"] <= 100 and "validation_exact_match" in record
    assert record["test_examples"] == 12 and record["train_examples"] == 32
    assert record["steps"] == 4 and record["settings"]["max_length"] == 64
    assert record["scope_sparsity"] == pytest.approx(0.5, abs=1e-6)
    assert "qa_outputs.weight" in checkpoint
    for name, keep in mask.items():
        weight = checkpoint[prefix + name]
        assert (weight[~keep] == 0).all(), name
        assert (weight[keep] != 0).all(), name


@pytest.mark.parametrize("model", ["opt-125m", "minilm-l6"])
def test_each_questions_f1_and_exact_match_average_to_the_runs(qa_runs, model):
    record, _, _, predictions = qa_runs[model]
    assert list(predictions.columns) == ["example", "f1", "exact_match", "score"]
    assert len(predictions) == record["test_examples"]
    assert predictions["f1"].between(0, 100).all()
    assert predictions["exact_match"].isin([0, 100]).all()
    assert (predictions["score"] == predictions["f1"]).all()
    assert predictions["f1"].mean() == pytest.approx(record["value"], abs=1e-4)
    assert predictions["exact_match"].mean() == pytest.approx(record["exact_match"], abs=1e-4)


def test_tables_label_the_squad_runs_f1(qa_runs, tmp_path):
    from essential_sparsity.evaluation import curves

    for model, (record, _, _, _) in qa_runs.items():
        write_json(tmp_path / model / "metrics.json", record)
    runs = curves.runs_table(sorted(tmp_path.glob("*/metrics.json")))
    assert set(runs["metric"]) == {"f1"}
