"""Bad input, as a new user would try it: a table of bad params.yaml edits and a table of damaged
artefacts, each with the one line it must produce.

A bad params file stops `essential-sparsity check` with exit code 2 and one line on stderr (and,
for a representative subset, `snakemake -n` with one line before any job), changing nothing
under results/. A damaged artefact is named by the reader that meets it (an ArtefactError) and
by `essential-sparsity audit`, which reports one line per problem and goes on. To add a case,
add a row: `Bad(name, edit, line)` or `Damaged(name, damage, line, read)`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import test_audit
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from essential_sparsity.catalog.sources import Model, SourceError, load_causal_lm, load_encoder
from essential_sparsity.cli.commands import main
from essential_sparsity.config.levels import lth_round_settings
from essential_sparsity.config.params import load_params, task_examples
from essential_sparsity.pruning import masks
from essential_sparsity.records import provenance
from essential_sparsity.records.io import ArtefactError, read_json
from essential_sparsity.stages import lth

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
PROJECT_FILES = ("Snakefile", "workflow", "profiles", "dvc.yaml", "params.yaml")
SNAKEMAKE_NOTICE = "Using workflow specific profile"  # Snakemake's own line, for any params

# ---- bad params.yaml ---------------------------------------------------------------------------

Edit = Callable[[bytes], bytes]


def text(old: str | bytes, new: str | bytes) -> Edit:
    """Replace one spot of params.yaml's text (YAML's own failures need the raw text)."""
    old, new = (t.encode() if isinstance(t, str) else t for t in (old, new))

    def edit(raw: bytes) -> bytes:
        assert raw.count(old) == 1, f"{old!r} is not once in params.yaml"
        return raw.replace(old, new)
    return edit


def tree(change: Callable[[dict], None]) -> Edit:
    """Change params.yaml as data (comments are lost, which no check depends on)."""
    def edit(raw: bytes) -> bytes:
        params = yaml.safe_load(raw)
        change(params)
        return yaml.safe_dump(params, sort_keys=False).encode()
    return edit


def setting(dotted: str, value: object) -> Edit:
    """Set one key, `finetune.profiles.smoke.epochs` style (missing mappings are created)."""
    def change(params: dict) -> None:
        *parents, key = dotted.split(".")
        for part in parents:
            params = params.setdefault(part, {})
        params[key] = value
    return tree(change)


def both(*edits: Edit) -> Edit:
    def edit(raw: bytes) -> bytes:
        for one in edits:
            raw = one(raw)
        return raw
    return edit


def appended(dotted: str, value: object) -> Edit:
    def change(params: dict) -> None:
        *parents, key = dotted.split(".")
        for part in parents:
            params = params[part]
        params[key] = [*params[key], value]
    return tree(change)


@dataclass(frozen=True)
class Bad:
    name: str
    edit: Edit
    line: str  # a regular expression the one line must match
    snakemake: bool = False  # also run through `snakemake -n`


BAD_PARAMS = [
    # non-finite numbers pass every minimum and maximum
    Bad("nan learning rate", setting("finetune.learning_rate", float("nan")),
        r"params\.yaml: finetune\.learning_rate = nan: not a finite number", snakemake=True),
    Bad("infinite epsilon", setting("evaluate.epsilon", float("inf")),
        r"evaluate\.epsilon = inf: not a finite number"),
    Bad("nan sparsity", appended("prune.sparsities", float("nan")),
        r"prune\.sparsities\.8 = nan: not a finite number"),
    Bad("-inf in a profile", setting("finetune.profiles.smoke.learning_rate", float("-inf")),
        r"finetune\.profiles\.smoke\.learning_rate = -inf"),
    # values that collide once written as paths
    Bad("two sparsities spelled alike", appended("prune.sparsities", 0.2000001),
        r"prune\.sparsities has 0\.2 and 0\.2000001, both written 0\.2 in paths", snakemake=True),
    Bad("a sparsity that rounds to 1", appended("prune.sparsities", 0.9999999),
        r"prune\.sparsities gives the sparsity 0\.9999999, written 1 in paths, which no rule "
        r"accepts", snakemake=True),
    Bad("a sparsity in exponent form", appended("llm.sparsities", 1e-07),
        r"llm\.sparsities gives the sparsity 1e-07, written 1e-07 in paths"),
    Bad("more digits than a path holds", setting("figures.fig01.sparsity", 0.2151234),
        r"figures\.fig01\.sparsity gives the sparsity 0\.2151234, written 0\.215123 in paths, "
        r"which names 0\.215123"),
    Bad("LTH rounds a path cannot spell", setting("lth.rate", 0.1234567),
        r"lth\.rate gives the sparsity 0\.1234567, written 0\.123457"),
    Bad("too many LTH rounds", setting("lth.rate", 1e-9),
        r"lth\.rate = 1e-09: 1e-09 is less than the minimum of 0\.01"),
    # checks that waited for a job
    Bad("2:5 on MiniLM", setting("prune.nm_patterns", ["2:4", "2:5"]),
        r"prune\.nm_patterns has '2:5': M = 5 does not divide the input size 384 of minilm-l6",
        snakemake=True),
    Bad("a split larger than the task", setting("data.train_size", 5000),
        r"data asks bbc-news for 5201 examples .*more than its 2127", snakemake=True),
    Bad("a split larger than digits", setting("data.train_size", 1700),
        r"\[profile default\]: data asks digits for 1901 examples"),
    Bad("a test set that leaves nothing to train",
        both(setting("data.train_size", None), setting("data.test_size", 2000)),
        r"data asks bbc-news for 2201 examples \(data\.validation_size \(200\) \+ one "
        r"training example \(1\) \+ data\.test_size \(2000\)\), more than its 2127"),
    Bad("too few generated problems", setting("arithmetic.profiles.smoke.generated.problems", 50),
        r"\[profile smoke\]: data asks arith-two-step for 65 examples"),
    # floats where integers are meant, and sizes with no bound
    Bad("batch_size 32.0", setting("finetune.batch_size", 32.0),
        r"finetune\.batch_size = 32\.0: 32\.0 is not of type 'integer' \(allowed: a whole "
        r"number", snakemake=True),
    Bad("epochs 1e30", setting("finetune.epochs", 1e30), r"finetune\.epochs = 1e\+30"),
    Bad("a batch of a billion", setting("finetune.batch_size", 10**9),
        r"finetune\.batch_size = 1000000000: .*greater than the maximum of 65536"),
    Bad("a seed numpy cannot take", setting("data.seed", 2**40), r"data\.seed = 1099511627776"),
    Bad("a trillion pre-training steps", setting("pretrain.steps", 10**12),
        r"pretrain\.steps = 1000000000000"),
    # YAML's own failures
    Bad("a duplicate key", text("  epochs: 2\n", "  epochs: 2\n  epochs: 3\n"),
        r"params\.yaml:\d+:3: not valid YAML: duplicate key 'epochs' \(first on line \d+\): "
        r"keep one", snakemake=True),
    Bad("a tab", text("\n  models: [minilm-l6]", "\n\tmodels: [minilm-l6]"),
        r"params\.yaml:\d+:\d+: not valid YAML: .*'\\t'.*indent with spaces, not tabs"),
    Bad("an unclosed bracket", text("tweet-sentiment]\n", "tweet-sentiment\n"),
        r"params\.yaml:\d+:\d+: not valid YAML: did not find expected ',' or '\]'"),
    Bad("not UTF-8", text(b"profile: default", b"profile: default # caf\xe9"),
        r"params\.yaml:\d+: not UTF-8 text \(byte 0xe9\); save the file as UTF-8", snakemake=True),
    Bad("a NUL byte", text("profile: default", "profile: default\0"),
        r"params\.yaml:\d+:17: not valid YAML: the character #x0000 \(control "
        r"characters are not allowed\): remove it$"),
    Bad("YAML 1.1's on: key", text("profile: default", "profile: default\non: 1"),
        r"params\.yaml:\d+:1: not valid YAML: key True is not a name: quote it"),
    Bad("an empty file", lambda raw: b"", r"params\.yaml: expected a mapping of sections, got "
        r"nothing"),
    # messages that said nothing about what is allowed
    Bad("a grid without 0", setting("prune.sparsities", [0.2, 0.5]),
        r"prune\.sparsities = \[0\.2, 0\.5\]: lacks 0 \(.*must contain 0", snakemake=True),
    Bad("an unknown per_task task", setting("finetune.per_task", {"imagenet": {"epochs": 1}}),
        r"finetune\.per_task\.imagenet = 'imagenet': not allowed \(allowed: bbc-news, .*"
        r"tiny-imagenet, .*svamp\)"),
    Bad("an unknown device", setting("resources.device", "gpu"),
        r"resources\.device = 'gpu': not allowed \(allowed: auto, cpu, cuda\)"),
    Bad("a profile override that is not a mapping", setting("data.profiles.smoke", 5),
        r"data\.profiles must map profile names .* to mappings of overrides"),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The project's files with a results/ tree of a few stand-in artefacts."""
    root = tmp_path_factory.mktemp("template")
    copy_project(root)
    for name in ("masks/minilm-l6/omp-global/0.5.safetensors",
                 "masks/minilm-l6/omp-global/0.5.json", "tables/finetune_runs.csv",
                 "finetune/minilm-l6/bbc-news/omp-global/0.5/seed-0/metrics.json"):
        path = root / "results" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(hashlib.sha256(name.encode()).digest() * 8)
    return root


def copy_project(root: Path) -> None:
    for name in PROJECT_FILES:
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, root / name)


@pytest.fixture
def project(template, tmp_path) -> Path:
    shutil.copytree(template, tmp_path / "project")
    return tmp_path / "project"


def snapshot(root: Path) -> dict[str, str]:
    """Every file under results/, by content."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "results").rglob("*")) if p.is_file()}


def run(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def one_line(stderr: str, noise: str = "\0") -> str:
    """The single line a failure must print, with no traceback around it."""
    lines = [line for line in stderr.splitlines() if line.strip() and noise not in line]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    return lines[0]


def break_params(project: Path, case: Bad) -> None:
    params = project / "params.yaml"
    params.write_bytes(case.edit(params.read_bytes()))


@pytest.mark.parametrize("case", BAD_PARAMS, ids=lambda case: case.name)
def test_bad_params_stop_check_with_one_line(project, case):
    break_params(project, case)
    before = snapshot(project)
    result = run([str(BIN / "essential-sparsity"), "check"], project)
    assert result.returncode == 2, result.stdout[-500:] + result.stderr
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert line.startswith("essential-sparsity check: ") and re.search(case.line, line), line
    assert snapshot(project) == before


@pytest.mark.parametrize("case", [c for c in BAD_PARAMS if c.snakemake],
                         ids=lambda case: case.name)
def test_bad_params_stop_snakemake_before_any_job(project, case):
    break_params(project, case)
    before = snapshot(project)
    result = run([str(BIN / "snakemake"), "-n", "--quiet"], project)
    assert result.returncode == 1
    assert re.search(case.line, one_line(result.stderr, SNAKEMAKE_NOTICE)), result.stderr
    assert "Job " not in result.stdout + result.stderr
    assert snapshot(project) == before


def test_a_bad_params_case_leaves_a_built_tree_byte_identical(audit_tree):
    """A real (not dry) Snakemake run and the audit on a tree the pipeline built: a bad value
    stops both before they touch results/."""
    project = audit_tree
    copy_project(project)
    case = next(c for c in BAD_PARAMS if c.name == "a sparsity that rounds to 1")
    break_params(project, case)
    before = snapshot(project)
    assert len(before) > 10  # masks, a checkpoint, metrics, a table and their records
    stamps = {p: p.stat().st_mtime_ns for p in (project / "results").rglob("*")}
    for command in (["snakemake", "--cores", "1"], ["snakemake", "-n"],
                    ["essential-sparsity", "audit", "--root", "."]):
        result = run([str(BIN / command[0]), *command[1:]], project, timeout=120)
        assert result.returncode in (1, 2), result.stdout + result.stderr
        assert re.search(case.line, one_line(result.stderr, SNAKEMAKE_NOTICE))
    assert snapshot(project) == before
    assert stamps == {p: p.stat().st_mtime_ns for p in (project / "results").rglob("*")}


# ---- damaged artefacts -------------------------------------------------------------------------

audit_tree = test_audit.built  # a results/ tree as the pipeline writes it (tiny BERT)

MASK = "results/masks/tiny/omp-global/0.5.safetensors"
MASK_07 = "results/masks/tiny/omp-global/0.7.safetensors"
MASK_NM = "results/masks/tiny/nm-2-4/0.5.safetensors"
RUN = "results/finetune/tiny/task/omp-global/0.5/seed-0"
METRICS = f"{RUN}/metrics.json"
CHECKPOINT = f"{RUN}/model.safetensors"
TABLE_RECORD = "results/tables/finetune_runs.csv.prov.json"


def with_metadata(name: str, **changes: str | None) -> Callable[[Path], Path]:
    """Rewrite a safetensors file with its metadata changed (None removes a key)."""
    def damage(root: Path) -> Path:
        path = root / name
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        metadata = {k: v for k, v in {**metadata, **changes}.items() if v is not None}
        save_file(load_file(str(path)), str(path), metadata=metadata)
        return path
    return damage


def with_json(name: str, change: Callable[[object], object]) -> Callable[[Path], Path]:
    def damage(root: Path) -> Path:
        path = root / name
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
        return path
    return damage


def with_bytes(name: str, content: bytes) -> Callable[[Path], Path]:
    def damage(root: Path) -> Path:
        (root / name).write_bytes(content)
        return root / name
    return damage


def as_directory(name: str) -> Callable[[Path], Path]:
    def damage(root: Path) -> Path:
        (root / name).unlink()
        (root / name).mkdir()
        return root / name
    return damage


def without(key: str) -> Callable[[dict], dict]:
    return lambda record: {k: v for k, v in record.items() if k != key}


def updated(**changes: object) -> Callable[[dict], dict]:
    return lambda record: {**record, **changes}


def lth_round(root: Path, checkpoint: Path) -> None:
    """The job that reads a fine-tuned checkpoint's config: the next LTH round."""
    params = load_params(root / "params.yaml", "smoke")
    lth.lth_round(lth_round_settings(params, 1), "tiny", "task", 1, checkpoint,
                  root / MASK.replace("0.5", "0"), root / "round-1.safetensors")


@dataclass(frozen=True)
class Damaged:
    name: str
    damage: Callable[[Path], Path]  # damages the tree, returns the file to be named
    line: str  # a regular expression, `{file}` standing for the file's path
    read: Callable[[Path, Path], object] | None = None  # (root, file): the pipeline's reader
    audited: bool = True  # the audit names it too


DAMAGED = [
    Damaged("packed_shapes not JSON", with_metadata(MASK, packed_shapes="{[oops"),
            r"{file}: its 'packed_shapes' metadata is not JSON",
            read=lambda root, f: masks.load_mask(f)),
    Damaged("packed_shapes not shapes", with_metadata(MASK_07, packed_shapes='{"a": "big"}'),
            r"{file}: its packed shapes do not give a shape to each stored tensor",
            read=lambda root, f: masks.load_mask(f)),
    Damaged("info not JSON", with_metadata(MASK_NM, info="model=tiny"),
            r"{file}: its 'info' metadata is not JSON", read=lambda root, f: masks.mask_info(f)),
    Damaged("info a list", with_metadata(MASK, info="[1, 2]"),
            r"{file}: its 'info' metadata is a JSON list, not the object the pipeline writes",
            read=lambda root, f: masks.mask_info(f)),
    Damaged("info without method", with_metadata(MASK, info='{"model": "tiny"}'),
            r"{file}: its info metadata has no valid method",
            read=lambda root, f: masks.mask_info(f)),
    Damaged("a mask report that is a list", with_json(MASK.replace(".safetensors", ".json"),
                                                      lambda report: [report]),
            r"{file}: it is a JSON list, not the object the pipeline writes",
            read=lambda root, f: read_json(f)),
    Damaged("a mask report with a word for a number",
            with_json(MASK_07.replace(".safetensors", ".json"),
                      updated(target_sparsity="seventy percent")),
            r"{file}: its 'target_sparsity' is 'seventy percent', not what a sparsity report "
            r"holds"),
    Damaged("metrics without mask", with_json(METRICS, without("mask")),
            r"{file}: has no 'mask', which the pipeline writes"),
    Damaged("a mask outside the project", with_json(METRICS, updated(mask="../../../etc/passwd")),
            r"{file}: names '\.\./\.\./\.\./etc/passwd', which is not a path inside the project"),
    Damaged("an absolute mask path", with_json(METRICS, updated(mask="/etc/passwd")),
            r"{file}: names '/etc/passwd', which is not a path inside the project"),
    Damaged("metrics not UTF-8", with_bytes(METRICS, b'{"mask": "caf\xe9"}'),
            r"{file}: not readable JSON \('utf-8' codec can't decode byte 0xe9",
            read=lambda root, f: read_json(f)),
    Damaged("metrics a directory", as_directory(METRICS), r"{file}: a directory, not a file",
            read=lambda root, f: read_json(f)),
    Damaged("a checkpoint without config", with_metadata(CHECKPOINT, config=None),
            r"{file}: has no 'config' metadata, which the pipeline writes",
            read=lambda root, f: lth_round(root, f), audited=False),
    Damaged("a record naming a file outside", with_json(TABLE_RECORD,
                                                        updated(artefact="../../outside.csv")),
            r"{file}: names '\.\./\.\./outside\.csv', which is not a path inside the project"),
    Damaged("a record with an input outside", with_json(TABLE_RECORD,
                                                        updated(inputs={"/etc/hostname": "0"})),
            r"{file}: names '/etc/hostname', which is not a path inside the project"),
    Damaged("a record not UTF-8", with_bytes(TABLE_RECORD, b"\xff\xfe{}"),
            r"{file}: not readable JSON"),
    Damaged("a record that is a list", with_json(TABLE_RECORD, lambda record: [record]),
            r"{file}: it is a JSON list"),
    Damaged("a record of an unknown profile", with_json(TABLE_RECORD, updated(profile="nightly")),
            r"{file}: .*profile = 'nightly' is unknown"),
    Damaged("a damaged dvc.lock", with_bytes("dvc.lock", b"stages: [\n"),
            r"{file}: not readable DVC metadata"),
]


def expected(case: Damaged, path: Path) -> str:
    return case.line.replace("{file}", re.escape(str(path)))


def audit_lines(root: Path, capsys) -> list[str]:
    """`essential-sparsity audit`: exit 1, one summary line on stderr, one line per problem."""
    assert main(["--params", str(root / "params.yaml"), "audit", "--root", str(root)]) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("audit: "), err
    return out.splitlines()


@pytest.mark.parametrize("case", DAMAGED, ids=lambda case: case.name)
def test_a_damaged_artefact_is_named_in_one_line(audit_tree, case, capsys):
    path = case.damage(audit_tree)
    if case.read:
        with pytest.raises(ArtefactError) as info:
            case.read(audit_tree, path)
        assert "\n" not in str(info.value) and re.match(expected(case, path), str(info.value))
    if case.audited:
        lines = audit_lines(audit_tree, capsys)
        assert any(re.match(expected(case, path), line) for line in lines), lines


def test_the_audit_goes_on_past_every_bad_artefact(audit_tree):
    """Five files damaged at once: the real CLI names each, exits 1, and shows no traceback."""
    chosen = [case for case in DAMAGED if case.name in (
        "packed_shapes not shapes", "info not JSON", "a mask report that is a list",
        "a mask outside the project", "a record that is a list")]
    paths = {case.name: case.damage(audit_tree) for case in chosen}
    assert len(set(paths.values())) == len(chosen) == 5
    result = run([str(BIN / "essential-sparsity"), "audit", "--root", str(audit_tree)],
                 audit_tree)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    for case in chosen:
        assert any(re.match(expected(case, paths[case.name]), line)
                   for line in result.stdout.splitlines()), (case.name, result.stdout)


def test_provenance_never_hashes_a_file_outside_the_project(audit_tree, monkeypatch):
    outside = audit_tree.parent / "outside.csv"
    outside.write_text("secret")
    with_json(TABLE_RECORD, updated(artefact="../outside.csv"))(audit_tree)
    hashed = []
    monkeypatch.setattr(provenance, "md5", lambda p: hashed.append(Path(p)) or "0" * 32)
    provenance.provenance_problems(audit_tree, lambda profile: load_params(
        audit_tree / "params.yaml", profile))
    assert outside not in hashed and all(audit_tree in p.parents for p in hashed)


# ---- what a single table row cannot hold --------------------------------------------------------

def pickle_only_model(directory: Path, model) -> Path:
    """A model directory whose weights are pickled (pytorch_model.bin), config.json beside."""
    directory.mkdir()
    model.config.to_json_file(str(directory / "config.json"))
    torch.save(model.state_dict(), directory / "pytorch_model.bin")
    return directory


def test_a_pickle_only_encoder_is_refused_in_one_line(tmp_path, tiny_bert):
    directory = pickle_only_model(tmp_path / "pickled", tiny_bert.base_model)
    with pytest.raises(SourceError) as info:
        load_encoder(Model("minilm-l6", str(directory)))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"model minilm-l6: cannot load {directory}")
    assert "model.safetensors" in message and "never loaded" in message


def test_a_pickle_only_causal_lm_is_refused_in_one_line(tmp_path):
    from hub_fixtures import tiny_llama

    directory = pickle_only_model(tmp_path / "pickled-lm", tiny_llama())
    with pytest.raises(SourceError) as info:
        load_causal_lm(str(directory))
    assert "\n" not in str(info.value) and "model.safetensors" in str(info.value)


def test_the_split_check_counts_the_packaged_tasks_as_their_loaders_do():
    """The split check's counts of the packaged tasks are what their loaders give, stripped and
    deduplicated (data.min_chars 0)."""
    from essential_sparsity.catalog import sources
    from essential_sparsity.data import images, splitting

    params = load_params(ROOT / "params.yaml")
    for task in ("bbc-news", "tweet-sentiment"):
        examples = sources.load_task(task).examples
        assert task_examples(params, task) == (len(splitting.clean(examples, 0)), False)
    for task in ("digits", "fashion-mnist-04", "fashion-mnist-59"):
        source = images.load_image_task(task)
        assert task_examples(params, task) == (len(splitting.unique_images(source.images)),
                                               source.fixed_test is not None)


def test_make_figures_keeps_the_lock_of_a_live_python_m_snakemake_run(tmp_path):
    """`make figures` clears a stale lock (`snakemake --unlock`) but not while a Snakemake run
    works in the directory, even one started as `python -m snakemake`."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    fake = tmp_path / "fake"
    (fake / "bin").mkdir(parents=True)
    (fake / "bin" / "snakemake").write_text('#!/bin/sh\necho "$@" >> unlocked\n')
    (fake / "bin" / "snakemake").chmod(0o755)
    (fake / "snakemake").mkdir()  # a stand-in package: `python -m snakemake` that only waits
    (fake / "snakemake" / "__main__.py").write_text("import time\ntime.sleep(60)\n")
    env = {**ENV, "PATH": f"{fake / 'bin'}{os.pathsep}{ENV['PATH']}", "PYTHONPATH": str(fake)}

    def unlock() -> bool:
        subprocess.run(["make", "-s", "unlock-stale"], cwd=tmp_path, env=env, check=True,
                       timeout=60)
        done = (tmp_path / "unlocked").is_file()
        (tmp_path / "unlocked").unlink(missing_ok=True)
        return done

    live = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1"], cwd=tmp_path,
                            env=env)
    try:
        assert not unlock()
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait()
    assert unlock()
