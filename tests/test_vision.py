"""Vision transformers: image splits, pixel scaling, the DINO objective, resumable pre-training,
the ViT pruning scope and the vision claims. Tiny models built from configs, tiny data made here
(or scikit-learn's digits, which installs with the project)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from run_records import write_runs

from essential_sparsity.config.params import (
    ParamsError,
    load_params,
    resolve,
    vision_tables_settings,
)
from essential_sparsity.data import images, splitting
from essential_sparsity.evaluation import claims
from essential_sparsity.pruning.scope import scope_weights
from essential_sparsity.records.io import ArtefactError, read_tensors
from essential_sparsity.stages import vision_tables as vision_table_stage
from essential_sparsity.training import dino, pretrain, vision_pretrain

SIZES = {"train_size": 40, "validation_size": 10, "test_size": 30, "min_chars": 0}


def tiny_settings(steps: int = 6) -> dict:
    return {"seed": 0, "steps": steps, "batch_size": 8, "learning_rate": 1e-3,
            "warmup_steps": 1, "weight_decay": 0.04, "checkpoint_every": 2, "precision": "fp32",
            "clip_grad": 3.0,
            "model": {"image_size": 8, "patch_size": 2, "hidden_size": 16,
                      "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32},
            "crops": {"global_scale": [0.6, 1.0], "local_scale": [0.25, 0.5], "local_size": 4,
                      "local_crops": 2, "jitter": 0.2},
            "dino": {"out_dim": 16, "hidden_dim": 16, "bottleneck_dim": 8, "batch_norm": True,
                     "student_temperature": 0.1, "teacher_temperature": 0.03,
                     "center_momentum": 0.9, "teacher_momentum": 0.99}}


def digits(n: int = 64) -> dict:
    source = images.load_image_task("digits")
    return {"images": torch.from_numpy(source.images[:n].copy()),
            "labels": torch.from_numpy(source.labels[:n].copy())}


def synthetic_task(n: int = 120, duplicates: int = 5, fixed: bool = False) -> images.ImageData:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(n, 1, 6, 6), dtype=np.uint8)
    pixels[:duplicates] = pixels[duplicates:2 * duplicates]  # exact copies of other images
    labels = np.arange(n) % 3
    test = (rng.integers(0, 256, size=(50, 1, 6, 6), dtype=np.uint8), np.arange(50) % 3)
    return images.ImageData(pixels, labels, ["a", "b", "c"], test if fixed else None)


def test_image_splits_follow_the_text_rule_drop_duplicates_and_round_trip(tmp_path):
    task = synthetic_task()
    splits = splitting.make_image_splits(task, SIZES, seed=0, name="synthetic")
    assert {k: len(v["labels"]) for k, v in splits.items()} == {"train": 40, "validation": 10,
                                                                 "test": 30}
    seen = [bytes(x) for s in splits.values() for x in s["images"].reshape(-1, 36)]
    assert len(seen) == len(set(seen))  # no image in two splits, no duplicate kept
    for split in splits.values():  # stratified: 3 balanced classes stay balanced
        assert np.bincount(split["labels"]).max() - np.bincount(split["labels"]).min() <= 1
    splitting.write_image_splits(tmp_path, splits, task.label_names, {"task": "synthetic"})
    back = splitting.read_image_split(tmp_path, "train")
    assert torch.equal(back["pixel_values"], torch.from_numpy(splits["train"]["images"]))
    assert splitting.label_names(tmp_path) == ["a", "b", "c"]
    again = splitting.make_image_splits(task, SIZES, seed=0, name="synthetic")
    assert all(np.array_equal(again[s]["images"], splits[s]["images"]) for s in splits)


def test_an_official_test_split_is_kept_as_the_test_set():
    task = synthetic_task(fixed=True)
    splits = splitting.make_image_splits(task, SIZES, seed=0)
    official = {bytes(x) for x in task.fixed_test[0].reshape(-1, 36)}
    assert all(bytes(x) in official for x in splits["test"]["images"].reshape(-1, 36))


def test_a_corrupt_image_split_is_named(tmp_path):
    (tmp_path / "train.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ArtefactError, match=r"train\.safetensors"):
        splitting.read_image_split(tmp_path, "train")


def test_pixel_values_resize_convert_channels_and_normalize():
    grey = torch.full((2, 1, 8, 8), 255, dtype=torch.uint8)
    x = images.pixel_values(grey, size=16, channels=3, mean=[0.5] * 3, std=[0.5] * 3)
    assert x.shape == (2, 3, 16, 16)
    assert torch.allclose(x, torch.ones_like(x))  # white -> (1 - 0.5) / 0.5
    rgb = torch.zeros((1, 3, 4, 4), dtype=torch.uint8)
    assert images.pixel_values(rgb, 4, 1, [0.0], [1.0]).shape == (1, 1, 4, 4)


def test_crops_are_a_pure_function_of_the_generator():
    x = torch.randn(5, 1, 8, 8)
    settings = tiny_settings()["crops"]
    first = dino.multi_crop(x, settings, torch.Generator().manual_seed(3))
    again = dino.multi_crop(x, settings, torch.Generator().manual_seed(3))
    assert [v.shape[-1] for v in first] == [8, 8, 4, 4]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_dino_loss_is_the_cross_entropy_between_different_views():
    teacher = [torch.randn(4, 6), torch.randn(4, 6)]
    student = [torch.randn(4, 6) for _ in range(3)]
    center = torch.zeros(6)
    loss = dino.dino_loss(student, teacher, center, 0.1, 0.04)
    pairs = [(i, j) for i in range(2) for j in range(3) if i != j]
    expected = sum((-(torch.softmax(teacher[i] / 0.04, -1)
                      * torch.log_softmax(student[j] / 0.1, -1)).sum(-1)).mean()
                   for i, j in pairs) / len(pairs)
    assert torch.isclose(loss, expected)
    assert dino.teacher_momentum(0, 10, 0.99) == pytest.approx(0.99)
    assert dino.teacher_momentum(10, 10, 0.99) == pytest.approx(1.0)


def test_centering_tracks_the_teacher_mean():
    center = torch.zeros(3)
    dino.update_center(center, [torch.ones(2, 3), torch.ones(2, 3)], momentum=0.5)
    assert torch.allclose(center, torch.full((3,), 0.5))


def test_both_objectives_start_from_the_same_backbone():
    settings = tiny_settings()
    sl = vision_pretrain.build_modules("supervised", settings, 1, 10)
    ssl = vision_pretrain.build_modules("dino", settings, 1, 10)
    assert all(torch.equal(a, b) for a, b in zip(sl["backbone"].state_dict().values(),
                                                  ssl["backbone"].state_dict().values(),
                                                  strict=True))


def test_supervised_pre_training_learns(tmp_path):
    history = vision_pretrain.run("supervised", digits(128), digits(64), 10,
                                  tiny_settings(steps=30), tmp_path / "run", "fp",
                                  log=lambda _: None)
    assert history[-1]["heldout_loss"] < history[0]["heldout_loss"]


@pytest.mark.parametrize("batch_norm", [True, False])
def test_self_distillation_learns_without_collapse(tmp_path, batch_norm):
    """The loss falls and the teacher's per-image distributions stay far sharper than uniform
    while their batch mean stays spread over many prototypes: its outputs differ by image. The
    head without batch norm is the control: at this scale it slides into the uniform collapse,
    which the same entropies detect."""
    settings = tiny_settings(steps=40)
    settings.update(batch_size=32, checkpoint_every=20)
    settings["dino"].update(out_dim=32, hidden_dim=32, bottleneck_dim=16, batch_norm=batch_norm)
    history = vision_pretrain.run("dino", digits(512), digits(64), 10, settings,
                                  tmp_path / "run", "fp", log=lambda _: None)
    uniform = np.log(32)
    first, last = history[0], history[-1]
    if batch_norm:
        assert last["heldout_loss"] < 0.85 * first["heldout_loss"]
        assert last["teacher_entropy"] < 0.5 * uniform
        assert last["teacher_batch_entropy"] > 0.7 * uniform
    else:
        assert last["teacher_entropy"] > 0.95 * uniform


@pytest.mark.parametrize("objective", ["supervised", "dino"])
def test_a_killed_run_resumes_bit_identical(tmp_path, monkeypatch, objective):
    settings = tiny_settings()
    whole = vision_pretrain.run(objective, digits(), digits(16), 10, settings, tmp_path / "a",
                                "fp", log=lambda _: None)
    original = vision_pretrain._checkpoint

    def crash_after_step_4(*args):
        original(*args)
        if args[6] == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(vision_pretrain, "_checkpoint", crash_after_step_4)
    with pytest.raises(KeyboardInterrupt):
        vision_pretrain.run(objective, digits(), digits(16), 10, settings, tmp_path / "b", "fp",
                            log=lambda _: None)
    monkeypatch.setattr(vision_pretrain, "_checkpoint", original)
    resumed = vision_pretrain.run(objective, digits(), digits(16), 10, settings, tmp_path / "b",
                                  "fp", log=lambda _: None)
    assert resumed == whole
    for step in pretrain.checkpoint_steps(settings):
        a = read_tensors(tmp_path / "a" / f"step-{step}" / "model.safetensors")
        b = read_tensors(tmp_path / "b" / f"step-{step}" / "model.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_vit_scope_has_six_matrices_per_block():
    backbone = vision_pretrain.build_backbone(tiny_settings(), 1)
    weights = scope_weights(backbone, ["query", "key", "value", "attention_output", "ffn_in",
                                       "ffn_out"])
    assert len(weights) == 6 * backbone.config.num_hidden_layers


def test_vision_params_are_checked_across_keys():
    raw = load_params("params.yaml", "default")
    raw = copy.deepcopy({k: v for k, v in raw.items() if k != "profile"})
    bad = copy.deepcopy(raw)
    bad["vision"]["tasks"] = ["fashion-mnist-04"]
    with pytest.raises(ParamsError, match="pre-training task"):
        resolve(bad, "default")
    bad = copy.deepcopy(raw)
    bad["vision"]["self_supervised"] = "vit-sl"
    with pytest.raises(ParamsError, match=r"vision\.self_supervised"):
        resolve(bad, "default")


def vision_tables(ssl_share: float, ssl_drop: float) -> dict[str, pd.DataFrame]:
    zeros = pd.DataFrame({"model": ["sl", "ssl"], "role": ["supervised", "self-supervised"],
                          "layer": ["all", "all"], "near_zero_share": [0.02, ssl_share]})
    drops = pd.DataFrame({"model": ["sl", "sl", "ssl", "ssl"],
                          "role": ["supervised"] * 2 + ["self-supervised"] * 2,
                          "task": ["t"] * 4, "sparsity": [0.0, 0.5] * 2,
                          "drop": [0.0, 3.0, 0.0, ssl_drop]})
    drops = drops.assign(drop_low=drops["drop"] - 0.5, drop_high=drops["drop"] + 0.5)
    essential = pd.DataFrame({"model": ["sl", "ssl"], "task": ["t", "t"],
                              "essential_sparsity": [0.0, 0.5 if ssl_drop <= 1 else 0.0]})
    essential = essential.assign(essential_low=essential["essential_sparsity"],
                                 essential_high=essential["essential_sparsity"])
    return {"vision_zero_weights": zeros, "vision_drop_vs_sparsity": drops,
            "vision_essential_sparsity": essential}


def test_vision_claims_follow_the_tables():
    assert claims.ssl_more_zeros(vision_tables(0.03, 0.5))["verdict"] == claims.REPRODUCED
    assert claims.ssl_more_zeros(vision_tables(0.01, 0.5))["verdict"] != claims.REPRODUCED
    assert claims.ssl_more_sparsity(vision_tables(0.03, 0.5))["verdict"] == claims.REPRODUCED
    # SSL's mean drop 2.0 [1.5, 2.5] against SL's 1.5 [1.0, 2.0]: neither beyond the other
    assert claims.ssl_more_sparsity(vision_tables(0.03, 4.0))["verdict"] == claims.INCONCLUSIVE
    assert claims.ssl_more_sparsity(vision_tables(0.03, 8.0))["verdict"] == \
        claims.NOT_REPRODUCED


def test_a_run_of_another_model_stops_the_vision_tables(tmp_path, params):
    vit = params["vision"]["models"][0]
    runs = write_runs(tmp_path, "digits", {0.0: 90.0, 0.5: 88.0}, model=vit)
    runs += write_runs(tmp_path, "bbc-news", {0.0: 90.0}, model="minilm-l6")
    with pytest.raises(ArtefactError, match="minilm-l6 are not vision runs of this profile"):
        vision_table_stage.downstream_tables(vision_tables_settings(params), runs)


def test_a_vision_transformer_loads_as_an_image_classifier(tmp_path):
    """ViT's config has no pad token: the decoder classifiers' pad fallback leaves it alone."""
    from transformers import ViTConfig, ViTModel

    from essential_sparsity.catalog.sources import Model, load_classifier

    ViTModel(ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32, image_size=8, patch_size=4)).save_pretrained(tmp_path)
    classifier = load_classifier(Model("tiny-vit", str(tmp_path)), num_labels=3, seed=0)
    assert classifier.config.num_labels == 3 and type(classifier).__name__.startswith("ViT")
