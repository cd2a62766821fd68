"""The README's headline table: every essential sparsity a build found, generated from its tables
so that the README quotes no number by hand. The marker above the table names the hash `dvc.lock`
recorded for the build's `results/tables` and each table's MD5, so a test can hold the README to
the committed `dvc.lock`.

`python -m essential_sparsity.records.headline [BUILD]` rewrites the table in README.md from the
tables of this project's build, or of the build in the directory BUILD.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

from ..config.params import PROJECT_ROOT
from ..evaluation.claims import essential_text
from .provenance import dvc_outs, md5

TABLES_DIR = "results/tables"
# Each essential-sparsity table, and the figures that draw it.
TABLES = {
    f"{TABLES_DIR}/essential_sparsity.csv": "2, 9",
    f"{TABLES_DIR}/vision_essential_sparsity.csv": "3, 6",
    f"{TABLES_DIR}/arithmetic_essential_sparsity.csv": "4",
}
BEGIN = "<!-- headline table, made by `python -m essential_sparsity.records.headline` from:"
END = "<!-- end of headline table -->"


def headline_block(build: str | Path = PROJECT_ROOT) -> str:
    """The marker naming the hashes, then one row per model, task and method."""
    build = Path(build)
    _, tables_hash = dvc_outs(build).get(TABLES_DIR, ("", "not recorded"))
    lines = [BEGIN, f"     {TABLES_DIR} md5 {tables_hash}",
             *(f"     {table} md5 {md5(build / table)}" for table in TABLES), "-->",
             "| figure | model | task | method | dense | essential sparsity [interval] "
             "| drop at the next |", "|---|---|---|---|---|---|---|"]
    for table, figures in TABLES.items():
        frame = pd.read_csv(build / table).sort_values(["model", "task", "method"])
        lines += [f"| {figures} | {r.model} | {r.task} | {r.method} | {r.dense_value:.1f} | "
                  f"{essential_text(r._asdict())} | {r.drop_at_next:.1f} at {r.next_sparsity:g} |"
                  for r in frame.itertuples()]
    return "\n".join([*lines, END])


def readme_block(text: str) -> str:
    """The headline block as the README holds it (an error if its markers are missing)."""
    found = re.search(re.escape(BEGIN) + ".*?" + re.escape(END), text, re.DOTALL)
    if found is None:
        raise ValueError(f"README.md has no headline table: it starts with {BEGIN!r}")
    return found.group(0)


def recorded_hashes(block: str) -> dict[str, str]:
    """Each path the block was made from, and its hash then."""
    return dict(re.findall(r"^\s+(\S+) md5 (\S+)$", block, re.MULTILINE))


def write_readme(build: str | Path = PROJECT_ROOT) -> None:
    readme = PROJECT_ROOT / "README.md"
    text = readme.read_text()
    readme.write_text(text.replace(readme_block(text), headline_block(build)))


if __name__ == "__main__":
    write_readme(sys.argv[1] if len(sys.argv) > 1 else PROJECT_ROOT)
