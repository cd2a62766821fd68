"""BookCorpus for the paper profile, read offline from a Hugging Face cache laid out like the
hub's parquet conversion of bookcorpus/bookcorpus (tests/hub_fixtures.py)."""

from __future__ import annotations

import pytest
from hub_fixtures import (
    BOOKCORPUS_COMMIT,
    BOOKCORPUS_REPO,
    BOOKCORPUS_REVISION,
    add_snapshot,
    write_bookcorpus_snapshot,
)
from test_sources import use_cache

from essential_sparsity.catalog.builtin import CORPORA
from essential_sparsity.catalog.sources import SourceError
from essential_sparsity.data.corpus import bookcorpus_documents, corpus_documents

# 0000.parquet gets the first four rows, 0001.parquet the last three.
SENTENCES = [
    "the  cat sat\ton the mat .",
    "hi .",
    "  ",
    "the dog runs in the rain .",
    "she likes the old red river .",
    "the cat sat on the mat .",
    "they walk .",
]


@pytest.fixture
def bookcorpus(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    write_bookcorpus_snapshot(cache, SENTENCES)
    use_cache(monkeypatch, cache)
    return cache


def test_fixture_is_the_hubs_parquet_conversion(bookcorpus):
    from huggingface_hub import scan_cache_dir

    report = scan_cache_dir(bookcorpus)
    assert not report.warnings
    (repo,) = report.repos
    assert (repo.repo_id, repo.repo_type) == (BOOKCORPUS_REPO, "dataset")
    (revision,) = repo.revisions
    assert revision.commit_hash == BOOKCORPUS_COMMIT
    assert revision.refs == {BOOKCORPUS_REVISION}
    assert sorted(f.file_path.relative_to(revision.snapshot_path).as_posix()
                  for f in revision.files) == ["plain_text/train/0000.parquet",
                                               "plain_text/train/0001.parquet"]


def test_bookcorpus_is_a_known_corpus():
    assert "bookcorpus" in CORPORA


def test_rows_in_file_order_whitespace_normalised_empty_dropped(bookcorpus):
    assert bookcorpus_documents() == [
        "the cat sat on the mat .",
        "hi .",
        "the dog runs in the rain .",
        "she likes the old red river .",
        "the cat sat on the mat .",
        "they walk .",
    ]


def test_corpus_documents_drops_short_and_duplicate_sentences(bookcorpus):
    assert corpus_documents(["bookcorpus"], min_chars=12) == [
        "the cat sat on the mat .",
        "the dog runs in the rain .",
        "she likes the old red river .",
    ]


def test_missing_cache_names_the_repo_and_the_download(tmp_path, monkeypatch):
    use_cache(monkeypatch, tmp_path / "hub")
    with pytest.raises(SourceError) as info:
        corpus_documents(["bookcorpus"], min_chars=1)
    message = str(info.value)
    assert "\n" not in message
    assert f"{BOOKCORPUS_REPO} ({BOOKCORPUS_REVISION})" in message
    assert (f"hf download --repo-type dataset --revision {BOOKCORPUS_REVISION} {BOOKCORPUS_REPO}"
            in message)


def test_snapshot_without_parquet_files_is_missing(tmp_path, monkeypatch):
    cache, staging = tmp_path / "hub", tmp_path / "staging"
    staging.mkdir()
    (staging / "README.md").write_text("---\n---\n")
    add_snapshot(cache, BOOKCORPUS_REPO, "dataset", BOOKCORPUS_COMMIT, staging,
                 revision=BOOKCORPUS_REVISION)
    use_cache(monkeypatch, cache)
    with pytest.raises(SourceError, match="hf download --repo-type dataset"):
        bookcorpus_documents()
