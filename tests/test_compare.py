"""`essential-sparsity compare`: two small fake builds (tables with the real column names, made by
the real table functions from made-up runs), no Snakemake build."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from essential_sparsity.cli.commands import main
from essential_sparsity.evaluation import curves
from essential_sparsity.evaluation.curves import RUN_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
TASKS = {"bbc-news": [92.0, 91.7, 91.2, 84.3], "tweet-sentiment": [70.0, 69.5, 65.1, 55.4]}
SPARSITIES = [0.0, 0.2, 0.4, 0.6]


def write(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # As the pipeline's write_csv; with inferred dtypes, so that a table read, edited and written
    # again differs only where it was edited.
    frame.infer_objects().to_csv(path, index=False, float_format="%.6g")


def fake_build(root: Path) -> Path:
    """Figure 2's tables of one model, two tasks, one method, four sparsities, one seed; a
    cosine table; and two claims."""
    runs = pd.DataFrame([
        {"model": "minilm-l6", "task": task, "method": "omp-global", "sparsity": s, "seed": 0,
         "metric": "accuracy", "value": v, "validation_value": v + 0.5, "test_loss": 0.3 + s,
         "test_examples": 1000, "steps": 64, "wall_time_s": 10.0 + s, "scope_sparsity": s}
        for task, values in TASKS.items() for s, v in zip(SPARSITIES, values, strict=True)],
        columns=[*RUN_COLUMNS, "wall_time_s"])  # builds before issue 23 have the times
    drops = curves.drop_table(runs)
    tables = root / "results" / "tables"
    write(tables / "finetune_runs.csv", runs)
    write(tables / "drop_vs_sparsity.csv", drops)
    write(tables / "essential_sparsity.csv", curves.essential_sparsity(drops, 1.0))
    write(tables / "mask_similarity.csv", pd.DataFrame(
        [{"model": "minilm-l6", "sparsity": 0.4, "pair": "lth-vs-omp", "task": "bbc-news",
          "other": "omp-global", "cosine": 0.812345, "random_expectation": 0.6}]))
    write(tables / "claims.csv", pd.DataFrame([
        {"id": "essential-range", "figure": "fig02", "claim": "s* in range", "paper": "0.4-0.6",
         "ours": "bbc-news 0.4, tweet-sentiment 0.2", "verdict": "reproduced", "detail": "2 of 2"},
        {"id": "sharp-turn", "figure": "fig02", "claim": "sharp turn", "paper": ">= 3x",
         "ours": "bbc-news: 8.1x", "verdict": "not reproduced", "detail": "needs >= 3"}]))
    return root


def edit(root: Path, table: str, change) -> None:
    path = root / "results" / "tables" / table
    frame = pd.read_csv(path)
    changed = change(frame)
    write(path, frame if changed is None else changed)


def compare(capsys, ours: Path, other: str, *options: str) -> tuple[int, list[str], str]:
    status = main(["--params", str(ROOT / "params.yaml"), "compare", "--root", str(ours),
                   *options, other])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


@pytest.fixture
def builds(tmp_path) -> tuple[Path, Path]:
    ours = fake_build(tmp_path / "ours")
    return ours, Path(shutil.copytree(ours, tmp_path / "theirs"))


def test_a_build_against_itself_is_one_line(capsys, builds):
    status, lines, _ = compare(capsys, builds[0], str(builds[0]))
    assert status == 0
    assert len(lines) == 1 and "identical" in lines[0] and "5 tables" in lines[0]


def test_one_metric_edited_beyond_the_tolerance_is_caught_and_named(capsys, builds):
    ours, theirs = builds

    def lower(frame):  # 5 points, beyond two standard errors of 1000 examples (2.77)
        frame.loc[(frame["task"] == "bbc-news") & (frame["sparsity"] == 0.2), "value"] -= 5.0

    edit(theirs, "drop_vs_sparsity.csv", lower)
    status, lines, _ = compare(capsys, ours, str(theirs))
    assert status == 1
    assert "tables: 1 cell beyond the tolerance in 1 table (0 more below it)" in lines
    cell = next(line for line in lines if line.startswith("drop_vs_sparsity.csv"))
    assert "model=minilm-l6 task=bbc-news method=omp-global sparsity=0.2" in cell
    assert cell.split()[-5:] == ["value", "91.7", "86.7", "5", "2.76711"]
    assert lines[-1] == "compare: the builds differ (1 cell, 0 essential sparsities, 0 verdicts)"


def test_numbers_that_differ_only_below_the_tolerance_agree(capsys, builds):
    ours, theirs = builds

    def nudge(frame):  # a few tenths of a point: within the noise of 1000 test examples
        frame["value"] += 0.3
        frame["test_loss"] *= 1 + 2e-6
        frame["wall_time_s"] *= 3  # times never count

    edit(theirs, "finetune_runs.csv", nudge)
    edit(theirs, "mask_similarity.csv", lambda f: f.__setitem__("cosine", 0.812346))
    status, lines, _ = compare(capsys, ours, str(theirs))
    assert status == 0, lines
    assert "tables: every cell agrees within the tolerance (17 cells differ below it)" in lines
    assert "essential sparsity: 2 of 2 agree" in lines
    assert "claims: 2 of 2 verdicts agree" in lines
    assert lines[-1] == "compare: the builds agree within the tolerance"
    # The user's tolerance replaces the rules: 0 is bit for bit.
    status, lines, _ = compare(capsys, ours, str(theirs), "--tolerance", "0")
    assert status == 1
    assert "tables: 17 cells beyond the tolerance in 2 tables (0 more below it)" in lines


def test_a_changed_essential_sparsity_and_verdict_are_reported(capsys, builds):
    ours, theirs = builds
    edit(theirs, "essential_sparsity.csv", lambda f: f.__setitem__(
        "essential_sparsity", f["essential_sparsity"].where(f["task"] != "tweet-sentiment", 0.4)))
    edit(theirs, "claims.csv", lambda f: f.__setitem__(
        "verdict", ["reproduced", "reproduced"]))
    status, lines, _ = compare(capsys, ours, str(theirs))
    assert status == 1
    assert "essential sparsity: 1 of 2 agree" in lines
    row = next(line for line in lines if "tweet-sentiment" in line and line.endswith("NO"))
    assert row.split() == ["essential_sparsity.csv", "minilm-l6", "tweet-sentiment",
                           "omp-global", "0.2", "0.4", "NO"]
    assert "claims: 1 of 2 verdicts agree" in lines
    assert "sharp-turn not reproduced reproduced NO" in [" ".join(line.split()) for line in lines]
    assert "sharp-turn: ours bbc-news: 8.1x | theirs bbc-news: 8.1x" in lines


def test_a_missing_table_and_row_are_differences(capsys, builds):
    ours, theirs = builds
    (theirs / "results" / "tables" / "mask_similarity.csv").unlink()
    edit(theirs, "finetune_runs.csv", lambda f: f.drop(index=f.index[-1]))
    status, lines, _ = compare(capsys, ours, str(theirs))
    assert status == 1
    assert any(line.split()[:4] == ["mask_similarity.csv", "(whole", "table)", "-"]
               for line in lines)
    assert any("task=tweet-sentiment method=omp-global sparsity=0.6 seed=0 (whole row) "
               "present absent" in " ".join(line.split()) for line in lines)


def test_bad_input_is_one_line_and_status_2(capsys, tmp_path, builds):
    status, lines, err = compare(capsys, tmp_path / "nowhere", str(builds[1]))
    assert status == 2 and not lines and len(err.splitlines()) == 1
    assert "no results/tables" in err
    # Not a directory, and not a revision of a repository that has none.
    subprocess.run(["git", "init", "-q", str(builds[0])], check=True)
    status, lines, err = compare(capsys, builds[0], "no-such-revision")
    assert status == 2 and not lines and len(err.splitlines()) == 1
    assert "no-such-revision: neither a build directory nor a git revision" in err


def test_a_git_revision_is_fetched_through_dvc(capsys, monkeypatch, builds):
    """The reviewer's form: `compare HEAD` against the tables the committed dvc.lock names."""
    from dvc.repo import Repo

    ours = builds[0]
    monkeypatch.chdir(ours)  # DVC's stage paths are relative to the working directory
    git = ["git", "-C", str(ours), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(ours)], check=True)
    repo = Repo.init(str(ours))
    repo.stage.add(name="tables", cmd="true", outs=["results/tables"])
    repo.commit("tables", force=True)
    repo.close()
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "published"], check=True)
    capsys.readouterr()  # what DVC said
    status, lines, _ = compare(capsys, ours, "HEAD")
    assert status == 0 and len(lines) == 1 and "identical" in lines[0]
    edit(ours, "claims.csv", lambda f: f.__setitem__("verdict", ["reproduced", "reproduced"]))
    status, lines, _ = compare(capsys, ours, "HEAD")
    assert status == 1 and "claims: 1 of 2 verdicts agree" in lines
    assert lines[0].startswith(f"compare {ours} (ours) with HEAD (")
    # Published tables that are in neither the cache nor a remote: one line, status 2.
    shutil.rmtree(ours / ".dvc" / "cache")
    status, lines, err = compare(capsys, ours, "HEAD")
    assert status == 2 and not lines and len(err.splitlines()) == 1
    assert "HEAD: its results/tables are in neither this repository's DVC cache" in err
