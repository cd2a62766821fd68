"""The README and docs/ say what is true today: every command they show runs as written, every
path they name exists or is built, the README's numbers are the committed build's, and no page
tells history."""
import functools
import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from essential_sparsity.cli import commands
from essential_sparsity.records import headline
from essential_sparsity.records.provenance import dvc_md5, dvc_outs, md5

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent


def text_of(page: Path) -> str:
    """A page without the headline table's marker (its hashes are not paths or history)."""
    text = page.read_text()
    return text.replace(headline.readme_block(text), "") if page.name == "README.md" else text


def shell_commands(page: Path) -> list[list[str]]:
    """Every command of the page's ```bash blocks, as words (comments dropped, `&&` split)."""
    blocks = re.findall(r"^```bash\n(.*?)^```", page.read_text(), re.MULTILINE | re.DOTALL)
    commands = []
    for line in "\n".join(blocks).splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            commands.append(words[:cut])
            words = words[cut + 1:]
    return commands


def inline_commands(page: Path) -> list[list[str]]:
    """Commands quoted in the text, such as a figure's `snakemake -c all fig02`."""
    programs = "snakemake|make|dvc|essential-sparsity|python -m"
    return [shlex.split(quoted) for quoted in
            re.findall(rf"`((?:{programs}) [^`]*)`", text_of(page))]


@functools.cache
def rule_names() -> set[str]:
    run = subprocess.run([BIN / "snakemake", "--list-rules"], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    return set(run.stdout.split())


def check_command(words: list[str], dry_run: bool = True) -> None:
    """Parse the command with its own program's parser; dry-run Snakemake (or, without
    `dry_run`, check its targets are rules or files) and make targets."""
    program, args = words[0], words[1:]
    if program == "snakemake":
        from snakemake.cli import get_argument_parser
        targets = get_argument_parser().parse_args(args).targets
        assert all(t in rule_names() or "/" in t for t in targets), words
        if dry_run and "--report" not in args:
            run = subprocess.run([BIN / "snakemake", *args, "-n", "--quiet", "rules"], cwd=ROOT,
                                 capture_output=True, text=True)
            assert run.returncode == 0, (words, run.stderr[-2000:])
    elif program == "dvc":
        from dvc.cli.parser import get_main_parser
        get_main_parser().parse_args(args)
    elif program == "essential-sparsity":
        commands.parser().parse_args(args)
    elif program == "make":
        run = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True)
        assert run.returncode == 0, (words, run.stderr)
    elif program == "python":
        module = args[1]
        assert args[0] == "-m", words
        assert (ROOT / f"{module.replace('.', '/')}.py").is_file() or importlib.util.find_spec(
            module) is not None, words
    else:
        assert program in {"git", "source"}, f"no check for {words}: add one"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_runs_as_written(page):
    for words in shell_commands(page):
        check_command(words)
    for words in inline_commands(page):
        check_command(words, dry_run=False)


def built_paths() -> list[str]:
    """What the build writes: every output and metric of dvc.yaml's stages, and the logs."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return ["logs", *(out if isinstance(out, str) else next(iter(out))
                      for stage in stages.values() for kind in ("outs", "metrics")
                      for out in stage.get(kind, []))]


def named_paths(text: str) -> set[str]:
    """Backquoted repository paths: a slash, no placeholder, not a URL or a hub name."""
    paths = set()
    for quoted in re.findall(r"`([^`\s]+)`", text):
        path = quoted.split("{")[0].split("<")[0].split("*")[0].rstrip("/")
        first = path.split("/")[0]
        if "/" in quoted and path and (ROOT / first).exists() and "://" not in quoted:
            paths.add(path)
    return paths


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_named_path_exists_or_is_built(page):
    built = built_paths()
    paths = named_paths(text_of(page))
    assert paths, page
    for path in paths:
        made = any(path == out or path.startswith(out + "/") or out.startswith(path + "/")
                   for out in built)
        assert (ROOT / path).exists() or made, f"{page.name} names {path}: not in the repository"


def test_named_paths_are_recognised():
    assert named_paths("`src/essential_sparsity/pruning/masks.py`, `results/masks/{model}/x`, "
                       "`org/repo`, `a.py`") == {"src/essential_sparsity/pruning/masks.py",
                                                  "results/masks"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_page_tells_history(page):
    commit = r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b"
    found = re.findall(rf"\bissues? #?\d+|\bsessions?\b|DESIGN\.md|{commit}", text_of(page),
                       re.IGNORECASE)
    assert not found, f"{page.name}: {found}"


def test_readme_is_short_and_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    first_block = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert first_block.start() < text.index("\n## ")
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make figures", "make test"]


def test_the_headline_table_is_the_committed_builds():
    """The README's hash of the tables is the one dvc.lock records; where the tables or DVC's
    listing of them are here, each table's MD5 too, and where they are, the rows."""
    block = headline.readme_block((ROOT / "README.md").read_text())
    recorded = headline.recorded_hashes(block)
    outs = dvc_outs(ROOT)
    assert recorded[headline.TABLES_DIR] == outs[headline.TABLES_DIR][1], (
        "README.md's headline table is not from the build dvc.lock records: "
        "run python -m essential_sparsity.records.headline after the build")
    for table in headline.TABLES:
        _, listed = dvc_md5(ROOT, outs, table)
        assert listed in (None, recorded[table]), table
    if all((ROOT / t).is_file() and md5(ROOT / t) == recorded[t] for t in headline.TABLES):
        assert headline.headline_block(ROOT) == block


def test_the_headline_table_is_made_from_the_tables(tmp_path):
    tables = tmp_path / headline.TABLES_DIR
    tables.mkdir(parents=True)
    row = {"model": "m", "method": "omp-global", "dense_value": 90.5, "essential_sparsity": 0.4,
           "essential_low": 0.3, "essential_high": 0.5, "next_sparsity": 0.5,
           "drop_at_next": 2.25}
    for number, table in enumerate(headline.TABLES):
        pd.DataFrame([{**row, "task": f"t{number}"}, {**row, "task": "a", "method": "random",
                                                      "essential_sparsity": 0.0,
                                                      "essential_low": 0.0}]
                     ).to_csv(tmp_path / table, index=False)
    lock = {"stages": {"tables": {"outs": [{"path": headline.TABLES_DIR, "md5": "abc.dir"}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    block = headline.headline_block(tmp_path)
    rows = [line for line in block.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:3] == ["| 2, 9 | m | a | random | 90.5 | 0 [0, 0.5] | 2.2 at 0.5 |",
                         "| 2, 9 | m | t0 | omp-global | 90.5 | 0.4 [0.3, 0.5] | 2.2 at 0.5 |"]
    assert rows[-1] == "| 4 | m | t2 | omp-global | 90.5 | 0.4 [0.3, 0.5] | 2.2 at 0.5 |"
    assert headline.recorded_hashes(block)[headline.TABLES_DIR] == "abc.dir"
    assert headline.readme_block(f"intro\n{block}\nmore") == block
    with pytest.raises(ValueError, match="no headline table"):
        headline.readme_block("a README without one")
