"""The paper profile's math word problems (MAWPS, ASDiv-A, SVAMP), read offline from a Hugging
Face cache laid out like the hub's Calc-X parquet conversions (tests/hub_fixtures.py)."""

from __future__ import annotations

import re

import pytest
from hub_fixtures import MATH_COMMIT, MATH_FIXTURE, MATH_REVISION, build_cache, write_math_snapshots
from test_sources import use_cache

from essential_sparsity.catalog.sources import SourceError
from essential_sparsity.data.math_hub import MATH_HUB_TASKS, clean_equation, load_math_problems

# task -> (split, equation) of every problem kept, in file order
EXPECTED = {
    "mawps": [("train", "( ( 45.0 - 35.0 ) / 5.0 )"), ("train", "56 - 35"),
              ("train", "( ( -12.0 ) + ( -8.0 ) ) / 2.0"), ("test", "56 - 22"),
              ("test", "20 - ( 2 * 5.92 ) - 6.79")],
    "asdiv-a": [("test", "7 + 2"), ("test", "( 4 + 23 ) / 9"), ("test", "3300 / 75"),
                ("test", "( 10 / 4 ) * 2")],
    "svamp": [("test", "( 76.0 - 25.0 )"), ("test", "( 60.0 * ( 55.0 / 15.0 ) )")],
}


@pytest.fixture(scope="module")
def math_cache(tmp_path_factory):
    """A cache holding the three repos: built once, read-only for every test."""
    return build_cache(tmp_path_factory, "hf-math", write_math_snapshots)


@pytest.fixture
def hub(math_cache, monkeypatch):
    use_cache(monkeypatch, math_cache)


def test_the_loader_reads_the_fixtures_files(math_cache):
    from huggingface_hub import scan_cache_dir

    report = scan_cache_dir(math_cache)
    assert not report.warnings
    files = {}
    for repo in report.repos:
        (revision,) = repo.revisions
        assert revision.commit_hash == MATH_COMMIT and revision.refs == {MATH_REVISION}
        files[repo.repo_id] = sorted(f.file_path.relative_to(revision.snapshot_path).as_posix()
                                     for f in revision.files)
    assert set(MATH_HUB_TASKS) == set(EXPECTED)
    for entry in MATH_HUB_TASKS.values():
        assert entry["revision"] == MATH_REVISION
        read = [name for names in entry["files"].values() for name in names]
        assert files[entry["hub"]] == sorted(read) == sorted(MATH_FIXTURE[entry["hub"]])


@pytest.mark.parametrize("task", list(EXPECTED))
def test_problems_equations_and_answers(hub, task):
    logged = []
    problems = load_math_problems(task, log=logged.append)
    assert list(problems.columns) == ["text", "equation", "answer", "split"]
    assert list(zip(problems["split"], problems["equation"], strict=True)) == EXPECTED[task]
    assert problems["answer"].dtype == float
    for equation, answer in zip(problems["equation"], problems["answer"], strict=True):
        assert eval(equation) == pytest.approx(answer)
    repo = MATH_HUB_TASKS[task]["hub"]
    questions = [row["question"] for rows in MATH_FIXTURE[repo].values() for row in rows]
    assert set(problems["text"]) <= set(questions)
    assert logged == [f"math task {task}: dropped {len(questions) - len(problems)} of "
                      f"{len(questions)} problems whose equation is not + - * / over numbers or "
                      f"does not give the answer"]


def test_unparseable_chain_is_dropped(hub):
    """ASDiv-A's remainder problems are solved with floor(): outside the grammar."""
    logged = []
    problems = load_math_problems("asdiv-a", log=logged.append)
    assert not problems["text"].str.contains("strawberries").any()
    assert logged[0].startswith("math task asdiv-a: dropped 1 of 5 problems")


@pytest.mark.parametrize(("source", "cleaned"), [
    ("x=((45.0-35.0)/5.0)", "( ( 45.0 - 35.0 ) / 5.0 )"),
    ("X = ( 8 - 3 ) * 2", "( 8 - 3 ) * 2"),
    ("(8 - 3) * 2 = x", "( 8 - 3 ) * 2"),
    ("16*.01*(1_050-2)", "16 * .01 * ( 1050 - 2 )"),
    ('<gadget id="calculator">8 - 3</gadget>\n<output>5</output>\n\n'
     '<gadget id="calculator">5 * 2</gadget>\n<output>10</output>\n\n<result>10</result>',
     "( 8 - 3 ) * 2"),
    ("85.0=(15.0*x)-20.0", None),
    ("floor(53/8)", None),
    ("(4+23)/9=3", None),
    ("5 / (3 - 3)", None),
    ("( 8 - 3", None),
    ("", None),
])
def test_clean_equation(source, cleaned):
    assert clean_equation(source) == cleaned


def test_missing_dataset_names_the_download(tmp_path, monkeypatch):
    use_cache(monkeypatch, tmp_path / "hub")
    with pytest.raises(SourceError) as info:
        load_math_problems("mawps")
    message = str(info.value)
    assert "\n" not in message
    assert ("hf download --repo-type dataset MU-NLPC/Calc-mawps default/train/0000.parquet "
            "--revision refs/convert/parquet") in message


def test_missing_test_split_is_named(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    write_math_snapshots(cache, tmp_path / "staging")
    snapshot = cache / "datasets--MU-NLPC--Calc-mawps" / "snapshots" / MATH_COMMIT
    (snapshot / "default" / "test" / "0000.parquet").unlink()
    use_cache(monkeypatch, cache)
    with pytest.raises(SourceError, match=re.escape("Calc-mawps default/test/0000.parquet")):
        load_math_problems("mawps")


def test_unknown_task_is_refused():
    with pytest.raises(SourceError, match="known: mawps, asdiv-a, svamp"):
        load_math_problems("gsm8k")
