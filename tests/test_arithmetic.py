"""Arithmetic word problems (Figure 4): the generated stand-ins, equation templates, the
SMC-Bench protocol over the hub tasks (a fixture cache) and the split stage."""

from __future__ import annotations

import json

import pytest
from hub_fixtures import write_math_snapshots
from hypothesis import given, settings
from hypothesis import strategies as st
from run_records import write_runs
from test_sources import use_cache

from essential_sparsity.catalog.tasks import ARITHMETIC_TASKS, GENERATED_ARITHMETIC_TASKS
from essential_sparsity.config.params import (
    ParamsError,
    arithmetic_tables_settings,
    finetune_settings,
    load_params,
    resolve,
    split_settings,
)
from essential_sparsity.data import arithmetic, math_hub
from essential_sparsity.evaluation import tables
from essential_sparsity.records.io import ArtefactError
from essential_sparsity.stages.split import split_task


def solve(text: str, template: str) -> float:
    """A template's value with the problem's own numbers put back in."""
    numbers = arithmetic._values(text)
    return math_hub.evaluate(" ".join(str(numbers[int(t[1:])]) if t.startswith("n") else t
                                      for t in template.split()))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), task=st.sampled_from(GENERATED_ARITHMETIC_TASKS))
def test_every_generated_problem_is_solved_by_its_template(seed, task):
    problems = arithmetic.generate_problems(task, 40, seed)
    assert (problems["answer"] > 0).all() and (problems["answer"] % 1 == 0).all()
    examples = arithmetic.as_classification(problems, log=lambda _: None)
    assert len(examples.examples) == len(problems)  # a template expresses every problem
    for text, label, answer in zip(examples.examples["text"], examples.examples["label"],
                                   problems["answer"], strict=True):
        assert solve(text, examples.label_names[label]) == answer


def test_generation_is_a_function_of_the_seed():
    first = arithmetic.generate_problems("arith-two-step", 30, seed=1)
    assert first.equals(arithmetic.generate_problems("arith-two-step", 30, seed=1))
    assert not first.equals(arithmetic.generate_problems("arith-two-step", 30, seed=2))


def test_the_distractor_task_adds_a_number_no_template_uses():
    problems = arithmetic.generate_problems("arith-distractor", 50, seed=0)
    for text, equation in zip(problems["text"], problems["equation"], strict=True):
        used = {token for token in arithmetic.template(text, equation).split()
                if token.startswith("n")}
        assert len(arithmetic._values(text)) == len(used) + 1


def test_templates_follow_the_text_order_and_refuse_unstated_numbers():
    text = "Ann wants 3,300 beads and has 75. How many more does she need?"
    assert arithmetic.template(text, "3300 - 75") == "n0 - n1"
    assert arithmetic.template("Ann has 4 and Bo has 9 more.", "( 9.0 + 4.0 )") == "( n1 + n0 )"
    assert arithmetic.template("A 20 dollar shirt is 15 percent off.", "20 * 15 / 100") is None


def test_label_names_cover_the_official_test_set():
    train = arithmetic.generate_problems("arith-one-step", 20, seed=0)
    test = train.iloc[:1].assign(text="Ann has 2 and Bo has 5 and Cy has 7.",
                                 equation="2 + 5 + 7", answer=14.0)
    task = arithmetic.as_classification(train, test, log=lambda _: None)
    assert "n0 + n1 + n2" in task.label_names
    assert task.label_names[task.fixed_test["label"].iloc[0]] == "n0 + n1 + n2"


def test_svamp_is_solved_by_a_model_trained_on_mawps_and_asdiv_a(tmp_path, monkeypatch):
    write_math_snapshots(tmp_path / "hub", tmp_path / "staging")
    use_cache(monkeypatch, tmp_path / "hub")
    lines = []
    task = arithmetic.load_arithmetic_task("svamp", {"problems": 1, "seed": 0}, lines.append)
    quiet = lambda _: None  # noqa: E731
    trained = [math_hub.load_math_problems(t, quiet) for t in ("mawps", "asdiv-a")]
    kept = [arithmetic._templated(frame, quiet) for frame in trained]
    assert len(task.examples) == sum(len(frame) for frame in kept)
    assert len(task.fixed_test) == len(math_hub.load_math_problems("svamp", quiet))
    for frame in (task.examples, task.fixed_test):
        assert frame["label"].between(0, len(task.label_names) - 1).all()
    assert any("does not state" in line for line in lines)  # MAWPS' negative numbers


def test_the_split_stage_writes_a_generated_task(tmp_path):
    params = load_params("params.yaml", "smoke")
    split_task(split_settings(params, "arith-one-step"), "arith-one-step", tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["generated"] == params["arithmetic"]["generated"]
    assert sorted(meta["label_names"]) == ["n0 * n1", "n0 + n1", "n0 - n1", "n0 / n1", "n1 - n0"]
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert len(rows) == params["data"]["train_size"]


def test_arithmetic_params_are_checked_and_applied():
    params = load_params("params.yaml")
    assert finetune_settings(params, "arith-distractor")["max_length"] == 64
    assert finetune_settings(params, "bbc-news")["max_length"] == 32
    raw = {**params, "arithmetic": {**params["arithmetic"], "tasks": ["gsm8k"]}}
    with pytest.raises(ParamsError, match="arithmetic"):
        resolve(raw, "default")


def test_the_tables_name_each_dataset_and_flag_the_stand_ins(tmp_path):
    """Figure 4's tables: a generated and a hub task side by side, each with the paper's dataset,
    the drop from its own dense run and its essential sparsity; a run of another task is
    refused."""
    params = load_params("params.yaml")
    params["arithmetic"]["tasks"] = ["arith-one-step", "svamp"]
    metrics = write_runs(tmp_path, "arith-one-step", {0.0: 90.0, 0.2: 89.5, 0.4: 88.5})
    metrics += write_runs(tmp_path, "svamp", {0.0: 40.0, 0.2: 39.8, 0.4: 39.5})
    out = {name: tmp_path / f"{name}.csv" for name in
           ("runs", "drop_vs_sparsity", "essential_sparsity")}
    built = tables.arithmetic_tables(arithmetic_tables_settings(params), metrics, out)
    essential = built["essential_sparsity"].set_index("task")
    assert essential.loc["arith-one-step", "essential_sparsity"] == 0.2  # 1.5 points at 0.4
    assert essential.loc["svamp", "essential_sparsity"] == 0.4
    assert essential["dataset"].to_dict() == {"arith-one-step": "MAWPS", "svamp": "SVAMP"}
    assert essential["generated"].to_dict() == {"arith-one-step": True, "svamp": False}
    drops = built["drop_vs_sparsity"]
    assert drops.loc[drops["sparsity"] == 0.4, "drop"].round(6).tolist() == [1.5, 0.5]
    assert all(path.is_file() for path in out.values())
    with pytest.raises(ArtefactError, match="bbc-news are not arithmetic runs"):
        tables.arithmetic_tables(arithmetic_tables_settings(params),
                                 metrics + write_runs(tmp_path, "bbc-news", {0.0: 1.0}), out)


def test_the_sources_listing_names_every_arithmetic_task(capsys):
    from essential_sparsity.cli.commands import main

    assert main(["--params", "params.yaml", "sources"]) == 0
    listed = [line.split() for line in capsys.readouterr().out.splitlines()]
    arithmetic_rows = {row[1]: " ".join(row[2:]) for row in listed if row[0] == "arithmetic"}
    assert set(arithmetic_rows) == set(ARITHMETIC_TASKS)
    assert arithmetic_rows["arith-distractor"].startswith("generated, as SVAMP")
    assert arithmetic_rows["svamp"].startswith("hub MU-NLPC/Calc-svamp")
