"""The paper profile's image tasks (CIFAR-10, CIFAR-100, Tiny-ImageNet), read offline from a
Hugging Face cache laid out like the hub's repos (tests/hub_fixtures.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hub_fixtures import (
    GREY_ROW,
    IMAGE_COMMIT,
    IMAGE_FIXTURE,
    build_cache,
    fixture_image,
    fixture_labels,
    write_image_snapshot,
    write_image_snapshots,
)
from test_sources import use_cache

from essential_sparsity.catalog.sources import SourceError
from essential_sparsity.data.image_hub import load_hub_task
from essential_sparsity.data.images import HUB_TASKS, load_image_task

NAMES = {"cifar10": ("airplane", "truck", 10), "cifar100": ("apple", "worm", 100),
         "tiny-imagenet": ("n01443537", "n14991210", 200)}


@pytest.fixture(scope="module")
def image_cache(tmp_path_factory):
    """A cache holding all three repos: built once, read-only for every test."""
    return build_cache(tmp_path_factory, "hf-images", write_image_snapshots)


@pytest.fixture
def hub(image_cache, monkeypatch):
    use_cache(monkeypatch, image_cache)


def expected(task: str, which: int) -> tuple[np.ndarray, np.ndarray]:
    """What the fixture wrote into the pool (0) or test (1) file: [n, 3, H, W] pixels, labels."""
    file, rows = list(IMAGE_FIXTURE[task][6].items())[which]
    pixels = [fixture_image(task, file, row) for row in range(rows)]
    rgb = [np.repeat(p[..., None], 3, axis=2) if p.ndim == 2 else p for p in pixels]
    return np.stack(rgb).transpose(0, 3, 1, 2), np.array(fixture_labels(task, rows))


def test_the_loader_reads_the_fixtures_files(image_cache):
    from huggingface_hub import scan_cache_dir

    report = scan_cache_dir(image_cache)
    assert not report.warnings
    files = {}
    for repo in report.repos:
        (revision,) = repo.revisions
        assert revision.commit_hash == IMAGE_COMMIT and revision.refs == {"main"}
        files[repo.repo_id] = sorted(f.file_path.relative_to(revision.snapshot_path).as_posix()
                                     for f in revision.files)
    assert set(HUB_TASKS) == set(IMAGE_FIXTURE)
    for task, entry in HUB_TASKS.items():
        repo, image_col, label_col, side, _, _, written = IMAGE_FIXTURE[task]
        assert (entry["hub"], entry["image"], entry["label"], entry["side"]) == (
            repo, image_col, label_col, side)
        assert files[repo] == sorted(written) == sorted(entry["files"].values())


@pytest.mark.parametrize("task", list(IMAGE_FIXTURE))
def test_images_labels_and_names(hub, task):
    data = load_hub_task(task)
    side = IMAGE_FIXTURE[task][3]
    first, last, classes = NAMES[task]
    assert data.label_names[0] == first and data.label_names[-1] == last
    assert len(data.label_names) == len(set(data.label_names)) == classes
    assert data.fixed_test is not None
    for which, (images, labels) in enumerate([(data.images, data.labels), data.fixed_test]):
        want_images, want_labels = expected(task, which)
        assert images.dtype == np.uint8 and images.shape == (len(want_labels), 3, side, side)
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(labels, want_labels)
        assert len(set(labels.tolist())) > 5
        if IMAGE_FIXTURE[task][5] == "PNG":  # lossless: exactly the pixels written
            np.testing.assert_array_equal(images, want_images)
        else:
            diff = np.abs(images.astype(int) - want_images.astype(int))
            assert diff.max() <= 8 and diff.mean() < 2


def test_tiny_imagenet_greyscale_becomes_rgb(hub):
    data = load_hub_task("tiny-imagenet")
    for images in (data.images, data.fixed_test[0]):
        grey = images[GREY_ROW]
        np.testing.assert_array_equal(grey[0], grey[1])
        np.testing.assert_array_equal(grey[0], grey[2])
        assert not np.array_equal(images[GREY_ROW + 1][0], images[GREY_ROW + 1][1])


def test_load_image_task_reads_the_hub(hub):
    via_images = load_image_task("cifar100")
    direct = load_hub_task("cifar100")
    np.testing.assert_array_equal(via_images.images, direct.images)
    np.testing.assert_array_equal(via_images.fixed_test[1], direct.fixed_test[1])
    assert via_images.label_names == direct.label_names


@pytest.mark.parametrize("task", list(IMAGE_FIXTURE))
def test_missing_dataset_names_the_download(tmp_path, monkeypatch, task):
    use_cache(monkeypatch, tmp_path / "hub")
    entry = HUB_TASKS[task]
    with pytest.raises(SourceError) as info:
        load_hub_task(task)
    message = str(info.value)
    assert "\n" not in message
    assert (f"hf download --repo-type dataset {entry['hub']} {entry['files']['pool']}"
            in message)


def test_missing_test_split_is_named(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    write_image_snapshot(cache, tmp_path / "staging", "cifar10")
    test_file = HUB_TASKS["cifar10"]["files"]["test"]
    (next((cache / "datasets--uoft-cs--cifar10" / "snapshots").iterdir()) / test_file).unlink()
    use_cache(monkeypatch, cache)
    with pytest.raises(SourceError, match=f"uoft-cs/cifar10 {test_file}"):
        load_hub_task("cifar10")


def test_images_of_another_size_are_refused(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    write_image_snapshot(cache, tmp_path / "staging", "tiny-imagenet", side=32)
    use_cache(monkeypatch, cache)
    with pytest.raises(SourceError, match="is 32x32, not 64x64"):
        load_hub_task("tiny-imagenet")


def test_unknown_task_is_refused():
    with pytest.raises(SourceError, match="unknown"):
        load_hub_task("imagenet")
