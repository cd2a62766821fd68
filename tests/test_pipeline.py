"""The smoke profile through DVC and Snakemake end to end, in a scratch git repository.

One build serves every test here (conftest's `built`: `make figures`, killed mid-job and resumed):
one Snakemake run over the whole DAG, so this is also the check that every rule executes, and
`dvc commit` recording it in dvc.lock.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from smoke import csv_dicts, csv_rows, sh, snapshot

from essential_sparsity.config.params import load_params

FIGURES = ("fig01_pruned_weights", "fig02_drop_vs_sparsity", "fig03_vision_drop_vs_sparsity",
           "fig04_arithmetic_drop_vs_sparsity", "fig05_nm_patterns", "fig06_sl_vs_ssl",
           "fig07_weight_distribution",
           "fig08_pretraining_sparsity", "fig08_pretraining_loss",
           "fig09_lth_vs_omp", "fig10_mask_similarity", "fig11_llm_one_shot")
TARGET_RULES = {"all", "data", "masks", "finetune", "lth", "tables", "report", "fig01_mask",
                "corpus", "llm", "pretrain", "vision", "arithmetic",
                *(name.split("_")[0] for name in FIGURES)}
# Rules the smoke profile has no job for: a catalog task's split runs only when params.yaml's
# catalog has tasks (test_catalog.py builds Figure 2 from four, test_catalog_kinds.py Figure 3
# from an image folder).
NO_SMOKE_JOB = {"split_catalog_task", "split_catalog_images"}

pytestmark = pytest.mark.slow
PROFILE_NOTICE = "Using workflow specific profile"  # Snakemake's, before it reads the Snakefile


def test_every_rule_ran_and_every_output_is_complete(built):
    rules = set(sh("snakemake", "--list-rules", cwd=built).stdout.split()) - TARGET_RULES - \
        NO_SMOKE_JOB
    summary = sh("snakemake", "--summary", "--cores", "1", cwd=built).stdout.splitlines()
    rows = [line.split("\t") for line in summary[1:] if line.strip()]
    assert {row[2] for row in rows} == rules
    assert all(row[4] == "ok" for row in rows), [r for r in rows if r[4] != "ok"]
    for figure in FIGURES:
        for path in (f"reports/figures/{figure}.png", f"reports/figures/{figure}.pdf",
                     f"reports/notebooks/{figure}.html"):
            assert (built / path).stat().st_size > 1000, path
    essential = json.loads((built / "results/metrics/essential_sparsity.json").read_text())
    assert set(essential["minilm-l6"]) == {"bbc-news", "tweet-sentiment"}
    for method in essential["minilm-l6"]["bbc-news"].values():  # the smoke grid: 0 and 0.5
        assert {method["low"], method["high"], method["essential_sparsity"]} <= {0, 0.5}
        assert method["low"] <= method["high"]
    assert not list(built.rglob("*.tmp")), "a temporary file was left behind"


def test_llm_runs_prune_what_they_say_and_the_dense_model_is_a_language_model(built):
    """A wrongly dequantized GGUF (say, Q and K rows left in llama.cpp's order) would give a
    perplexity in the thousands; the packaged SmolLM2 gives well under 100 on held-out text."""
    runs = csv_dicts(built / "results" / "tables" / "llm_zero_shot.csv")
    assert {row["method"] for row in runs} == {"omp-global", "wanda", "sparsegpt"}
    for row in runs:
        assert abs(float(row["scope_sparsity"]) - float(row["sparsity"])) < 1e-3, row
    (dense,) = [row for row in runs if float(row["sparsity"]) == 0]
    assert float(dense["perplexity"]) < 1000
    assert float(dense["accuracy"]) > float(dense["chance"])


def test_pretraining_counts_every_checkpoint_and_feeds_the_downstream_stages(built):
    """Every subset's every checkpoint is counted, from step 0 to the last, each subset is
    fine-tuned at every downstream level, and the models learnt something."""
    settings = load_params(built / "params.yaml", "smoke")["pretrain"]
    steps = [*range(0, settings["steps"], settings["checkpoint_every"]), settings["steps"]]
    zeros = [row for row in csv_dicts(built / "results/tables/pretrain_zero_weights.csv")
             if row["component"] == "all"]
    for fraction in settings["fractions"]:
        model = f"scratch-{round(100 * fraction)}"
        mine = [row for row in zeros if row["model"] == model]
        assert [int(row["step"]) for row in mine] == steps
        assert (built / "results/pretrain" / model / f"step-{steps[-1]}/config.json").is_file()
    drops = csv_dicts(built / "results/tables/pretrain_drop_vs_sparsity.csv")
    assert len(drops) == (len(settings["fractions"]) * len(settings["sparsities"])
                          * len(load_params(built / "params.yaml", "smoke")["sources"]["tasks"]))
    losses = csv_dicts(built / "results/tables/pretrain_losses.csv")
    for model in {row["model"] for row in losses}:
        curve = [float(row["heldout_loss"]) for row in losses if row["model"] == model]
        assert curve[-1] < curve[0], model
    assert not list((built / "results/pretrain").glob("*.partial"))


def test_both_vision_objectives_pre_train_and_fine_tune_at_every_level(built):
    """The supervised and the DINO ViT each leave every checkpoint, a loss per checkpoint, a
    weight count per block, and a fine-tuned accuracy per task and sparsity."""
    params = load_params(built / "params.yaml", "smoke")
    vision = params["vision"]
    settings = vision["pretrain"]
    steps = [*range(0, settings["steps"], settings["checkpoint_every"]), settings["steps"]]
    losses = csv_dicts(built / "results/tables/vision_losses.csv")
    for model, objective in (("vit-sl", "supervised"), ("vit-ssl", "dino")):
        assert [int(r["step"]) for r in losses if r["model"] == model] == steps
        assert {r["objective"] for r in losses if r["model"] == model} == {objective}
        assert (built / "results/vision" / model / f"step-{steps[-1]}/config.json").is_file()
    zeros = csv_dicts(built / "results/tables/vision_zero_weights.csv")
    blocks = settings["model"]["num_hidden_layers"]
    assert len(zeros) == len(vision["models"]) * (blocks + 1)
    drops = csv_dicts(built / "results/tables/vision_drop_vs_sparsity.csv")
    assert len(drops) == len(vision["models"]) * len(vision["tasks"]) * len(vision["sparsities"])
    assert not list((built / "results/vision").glob("*.partial"))


def test_arithmetic_tasks_fine_tune_at_every_level_as_labelled_stand_ins(built):
    """Figure 4's table: every model on every arithmetic task at every sparsity, each row naming
    the paper's dataset its generated task stands in for."""
    params = load_params(built / "params.yaml", "smoke")
    arithmetic = params["arithmetic"]
    drops = csv_dicts(built / "results/tables/arithmetic_drop_vs_sparsity.csv")
    assert len(drops) == (len(params["sources"]["models"]) * len(arithmetic["tasks"])
                          * len(arithmetic["sparsities"]))
    assert {(r["task"], r["dataset"], r["generated"]) for r in drops} == {
        ("arith-two-step", "ASDiv-A", "True")}
    meta = json.loads((built / "results/data/arith-two-step/meta.json").read_text())
    assert meta["generated"] == arithmetic["generated"]


def test_a_build_killed_mid_job_resumed_and_finished(smoke_builds):
    """The killed fine-tuning job (it had no metrics right after the kill) ran again, and DVC
    records every stage up to date. Its artefacts equal an uninterrupted build's:
    test_build_through_slurm.py compares every checkpoint, mask and metrics file."""
    built = smoke_builds["repo"]
    assert (smoke_builds["killed"] / "metrics.json").is_file()
    assert "up to date" in sh("dvc", "status", cwd=built).stdout
    assert not list((built / "results").rglob("*.tmp")), "a temporary file was left behind"


def test_the_audit_passes_on_the_built_pipeline(built):
    """Every mask, fine-tuned checkpoint and the runs table of a real build hold their claims."""
    result = sh("essential-sparsity", "audit", cwd=built, check=False)
    assert result.returncode == 0 and result.stdout == "", result.stdout[-2000:]
    assert "audit: 0 violations" in result.stderr


def test_claim_verdicts_follow_from_the_built_tables(built):
    """Two verdicts recomputed here from the smoke build's tables and the claims' own numbers."""
    tables = built / "results" / "tables"
    verdicts = dict(csv_rows(tables / "claims.csv", "id", "verdict"))
    args = {c["id"]: c.get("args", {}) for c in
            yaml.safe_load((built / "workflow" / "claims.yaml").read_text())}

    band = args["essential-sparsity-range"]
    found = [(float(row["essential_low"]), float(row["essential_high"]))
             for row in csv_dicts(tables / "essential_sparsity.csv")
             if row["method"] == band["method"]]
    expected = ("not reproduced" if any(high < band["low"] or low > band["high"]
                                        for low, high in found)
                else "reproduced" if all(band["low"] <= low and high <= band["high"]
                                         for low, high in found) else "inconclusive")
    assert verdicts["essential-sparsity-range"] == expected

    cosine = args["lth-omp-mask-similarity"]
    pairs = [float(row["cosine"]) for row in csv_dicts(tables / "mask_similarity.csv")
             if row["pair"] == "lth-vs-omp" and float(row["sparsity"]) <= cosine["max_sparsity"]]
    expected = ("not run at this profile" if not pairs else
                "reproduced" if min(pairs) > cosine["threshold"] else "not reproduced")
    assert verdicts["lth-omp-mask-similarity"] == expected
    page = (built / "reports" / "claims.md").read_text()
    assert all(verdict in page for verdict in verdicts.values())


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking")
IMAGES_LOADED = """<script>window.addEventListener("load", () => {
  const images = [...document.images];
  const ok = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute("data-images", ok + "/" + images.length);
});</script>"""


def test_report_page_shows_every_figure_in_a_real_browser(built, tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make browser` installs it"
    page = built / "reports" / "index.html"
    text = page.read_text()
    assert "<script" not in text and "http" not in text.split("<h2>Provenance")[0]
    assert all(f"figures/{figure}.png" in text and f"notebooks/{figure}.html" in text
               for figure in FIGURES)
    assert "The paper's claims" in text and "Essential sparsity" in text
    probe = page.with_name(".images-loaded.html")  # beside the page: the same relative paths
    probe.write_text(text + IMAGES_LOADED)
    try:
        dom = subprocess.run([chromium, *CHROMIUM_FLAGS, "--virtual-time-budget=10000",
                              "--dump-dom", probe.as_uri()],
                             capture_output=True, text=True, timeout=120).stdout
    finally:
        probe.unlink()
    assert f'data-images="{len(FIGURES)}/{len(FIGURES)}"' in dom, dom[-500:]
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *CHROMIUM_FLAGS, "--window-size=1200,3000",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    assert shot.stat().st_size > 50_000


def test_snakemake_report_has_every_figure_as_a_result(built, tmp_path):
    out = tmp_path / "snakemake-report.html"
    sh("snakemake", "--report", str(out), cwd=built)
    text = out.read_text(errors="replace")
    assert all(f"{figure}.png" in text for figure in FIGURES)


def test_second_run_has_nothing_to_do(built):
    """Also for a reviewer's `dvc repro`: every stage's command names Snakemake targets that the
    build made, so a stale stage reruns exactly its own part of the DAG."""
    assert "Nothing to be done" in sh("snakemake", "-n", cwd=built).stdout
    assert "up to date" in sh("dvc", "status", cwd=built).stdout
    assert "up to date" in sh("dvc", "repro", cwd=built).stdout
    stages = yaml.safe_load((built / "dvc.yaml").read_text())["stages"].values()
    commands = [stage["cmd"].split() for stage in stages]
    assert all(command[:3] == ["snakemake", "--cores", "all"] for command in commands)
    targets = sorted({target for command in commands for target in command[3:]})
    assert "Nothing to be done" in sh("snakemake", "-n", *targets, cwd=built).stdout


def test_every_artefact_is_dvcs_or_gits(built):
    """Whatever the build wrote under results/ and reports/ (provenance records included) is a
    DVC output, ignored by git, so a reviewer's `dvc pull` brings it. The one thing git sees is
    the .gitignore files DVC writes for its outputs (the project commits them; this scratch
    repository started without)."""
    status = sh("git", "status", "--porcelain", "--untracked-files=all", "results", "reports",
                cwd=built).stdout.splitlines()
    assert status and all(line.endswith("/.gitignore") for line in status), status


@pytest.fixture(scope="module")
def pulled(built, tmp_path_factory):
    """A fresh clone that got every artefact from a DVC remote, not by building (both removed
    afterwards: each holds a copy of every artefact)."""
    remote = tmp_path_factory.mktemp("remote")
    sh("dvc", "remote", "add", "-d", "local", str(remote), cwd=built)
    sh("dvc", "push", cwd=built)
    sh("git", "add", "-A", cwd=built)
    sh("git", "commit", "-qm", "built and pushed", cwd=built)
    clone = tmp_path_factory.mktemp("clone") / "repo"
    sh("git", "clone", "-q", str(built), str(clone), cwd=built.parent)
    # What `make pull` runs: fetch the artefacts, then tell Snakemake they are current.
    sh("dvc", "pull", cwd=clone)
    sh("snakemake", "--cores", "1", "--touch", "--forceall", "--quiet", "all", cwd=clone)
    yield clone
    shutil.rmtree(clone)
    shutil.rmtree(remote)


def test_pulled_clone_reports_nothing_to_rerun(built, pulled):
    assert "up to date" in sh("dvc", "status", cwd=pulled).stdout
    assert "Nothing to be done" in sh("snakemake", "-n", cwd=pulled).stdout
    for path in ("results/tables/drop_vs_sparsity.csv",
                 "reports/figures/fig02_drop_vs_sparsity.png"):
        assert (pulled / path).read_bytes() == (built / path).read_bytes()


def planned_rules(repo: Path, *targets: str) -> set[str]:
    out = sh("snakemake", *targets, "-n", "--quiet", "rules", cwd=repo).stdout
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", out, flags=re.M)} - {"total"}


def test_reviewer_compares_two_params_versions_with_dvc(pulled):
    """README, reviewer workflows: a params edit, committed, is what `dvc params diff` and
    `dvc status` report; fine-tuning and what follows it rerun, pruning never."""
    params = pulled / "params.yaml"
    text = params.read_text()
    try:
        params.write_text(text.replace("smoke: {epochs: 1,", "smoke: {epochs: 2,", 1))
        assert params.read_text() != text
        sh("git", "commit", "-qam", "two epochs", cwd=pulled)
        diff = sh("dvc", "params", "diff", "HEAD~1", "--targets", "params.yaml", "--md",
                  cwd=pulled).stdout
        assert "finetune.profiles.smoke.epochs" in diff and "| 1 " in diff and "| 2 " in diff
        stale = set(json.loads(sh("dvc", "status", "--json", cwd=pulled).stdout))
        assert stale == {"finetune"}  # later stages go stale once finetune's outputs change
        plan = planned_rules(pulled)
        assert {"finetune_run", "lth_round", "tabulate", "draw_fig02", "draw_fig09"} <= plan
        assert not plan & {"prune", "split_task", "mask_table", "draw_fig01"}
    finally:
        params.write_text(text)


def test_reviewer_redraws_one_figure_from_pulled_artefacts_without_retraining(pulled):
    """README, reviewer workflows: Snakemake redraws the figure from the pulled tables, and the
    report page that shows it; the audit tells what came out different from what dvc.lock
    recorded (the pdf and the executed notebook carry their dates) until `dvc commit` records
    it."""
    figure = pulled / "reports" / "figures" / "fig02_drop_vs_sparsity.png"
    before = figure.stat().st_mtime_ns
    redraw = ("fig02", "report", "--forcerun", "draw_fig02")
    assert planned_rules(pulled, *redraw) == {"draw_fig02", "fig02", "report_page", "report"}
    sh("snakemake", "--cores", "2", *redraw, cwd=pulled)
    assert figure.stat().st_mtime_ns > before
    stale = audit_lines(pulled)
    assert all(re.search(r"that dvc.lock's (fig02|report) stage recorded$", line)
               for line in stale), stale
    sh("dvc", "commit", "--force", "fig02", "report", cwd=pulled)
    assert audit_lines(pulled) == []


def test_reviewer_reruns_one_fine_tuning_cell_with_another_seed(pulled):
    """README, reviewer workflows: name the run's metrics.json with the new seed; its mask and
    data are pulled, so it is the one job that runs, and the audit holds it to its mask."""
    cell = "results/finetune/minilm-l6/bbc-news/omp-global/0.5/seed-7/metrics.json"
    assert planned_rules(pulled, cell) == {"finetune_run"}
    sh("snakemake", "--cores", "2", cell, cwd=pulled)
    record = json.loads((pulled / cell).read_text())
    assert record["seed"] == 7 and record["sparsity"] == 0.5
    # Its mask, checkpoint and provenance hold; the tables hold the configured seeds only.
    assert audit_lines(pulled) == [f"results/tables/finetune_runs.csv: lacks the run {cell}"]
    shutil.rmtree((pulled / cell).parent)  # the later tests start from the pulled clone


def test_repeating_a_method_with_another_seed_runs_only_its_new_runs(pulled):
    """params.yaml finetune.repeats: the repeated method's runs and the dense ones, with the new
    seed, are the only fine-tuning jobs (seeds are no run's setting), and the drop table averages
    two seeds where they ran and one elsewhere. The last test of the pulled clone."""
    params = pulled / "params.yaml"
    text = params.read_text()
    table = "results/tables/drop_vs_sparsity.csv"
    try:
        params.write_text(text.replace("repeats: {methods: []}",
                                       "repeats: {methods: [omp-global], seeds: [1]}", 1))
        assert params.read_text() != text
        plan = sh("snakemake", table, "-n", "--quiet", "rules", cwd=pulled).stdout
        counts = dict(re.findall(r"^(\w+)\s+(\d+)$", plan, flags=re.M))
        smoke = load_params(params, "smoke")
        curves = len(smoke["sources"]["models"]) * len(smoke["sources"]["tasks"])
        assert counts == {"finetune_run": str(2 * curves), "tabulate": "1",
                          "total": str(2 * curves + 1)}
        sh("snakemake", "--cores", "2", table, cwd=pulled)
        drops = pd.read_csv(pulled / table)
        assert set(drops.loc[drops["method"] == "omp-global", "seeds"]) == {2}
        assert set(drops.loc[drops["method"] == "random", "seeds"]) == {1, 2}  # 0: the dense
        assert (drops["drop_low"] <= drops["drop"]).all()
        assert (drops["drop"] <= drops["drop_high"]).all()
    finally:
        params.write_text(text)


def audit_lines(repo: Path) -> list[str]:
    return sh("essential-sparsity", "audit", cwd=repo, check=False).stdout.splitlines()


def test_bad_params_stop_everything_and_touch_nothing(built):
    params = built / "params.yaml"
    good = params.read_text()
    before = snapshot(built / "results")
    try:
        bad = re.sub(r"^  learning_rate: ", "  learning_rate: -", good, count=1, flags=re.M)
        assert bad != good
        params.write_text(bad)
        for command in (("snakemake", "--cores", "1", "--forceall"), ("dvc", "repro", "--force")):
            result = sh(*command, cwd=built, check=False)
            assert result.returncode != 0
            assert "finetune.learning_rate = -" in result.stdout + result.stderr
        direct = sh("snakemake", "--cores", "1", cwd=built, check=False)
        ours = [line for line in direct.stderr.strip().splitlines()
                if not line.startswith(PROFILE_NOTICE)]
        assert len(ours) == 1 and "fix finetune.learning_rate in params.yaml" in ours[0], ours
    finally:
        params.write_text(good)
    assert snapshot(built / "results") == before
