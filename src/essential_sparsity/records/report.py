"""The report page, reports/index.html: every figure with its caption and the paper's figure
number, the essential-sparsity and claims tables, links to the executed notebooks, and where the
numbers came from. One static file with no scripts and nothing fetched: images and notebooks are
linked by relative path, so the page renders offline and moves with the reports/ folder."""

from __future__ import annotations

import hashlib
import html
import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ..evaluation import claims as claims_module
from .io import ArtefactError, atomic_path
from .provenance import code_version, package_versions, source_date_epoch

STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
figure { margin: 2em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { margin-top: .5em; } table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
.reproduced { color: #1a7f37; } .not-reproduced { color: #b42318; }
.inconclusive { color: #9a6700; } .not-run { color: #777; }
"""


def paper_figure(name: str) -> int:
    """fig02_drop_vs_sparsity -> 2."""
    match = re.match(r"fig(\d+)_", name)
    if not match:
        raise ValueError(f"{name}: figure files are named figNN_what")
    return int(match.group(1))


def provenance(params_file: str | Path, profile: str) -> dict[str, str]:
    """What a reader needs to rebuild these numbers: code version, parameters, software. No
    build time: the page is part of the build's hashed content, which must be the same bytes in
    every build of one commit (the run records hold when each job ran)."""
    code = code_version()
    state = ("not a git checkout" if code["commit"] is None else
             code["commit"] + (" with uncommitted changes" if code["modified"] else ""))
    committed = datetime.fromtimestamp(source_date_epoch(), UTC).strftime("%Y-%m-%d %H:%M UTC")
    versions = package_versions()
    return {"profile": profile, "code": state, "code date": committed,
            "params.yaml sha256": hashlib.sha256(Path(params_file).read_bytes()).hexdigest(),
            "python": platform.python_version(), "machine": platform.machine(),
            **{p: versions[p] or "not installed" for p in ("torch", "transformers", "snakemake",
                                                           "dvc")}}


def _table(frame: pd.DataFrame, columns: list[str], classes: str | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = []
    for record in frame[columns].itertuples(index=False):
        cells = []
        for column, value in zip(columns, record, strict=True):
            text = html.escape("" if pd.isna(value) else f"{value:g}" if isinstance(value, float)
                               else str(value))
            style = f' class="{_verdict_class(value)}"' if column == classes else ""
            cells.append(f"<td{style}>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _verdict_class(verdict: str) -> str:
    return "not-run" if verdict == claims_module.NOT_RUN else verdict.replace(" ", "-")


def _one_decimal(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.1f}"


def essential_for_readers(essential: pd.DataFrame) -> pd.DataFrame:
    """The essential sparsity table as a reader wants it: each essential sparsity with its
    interval, metrics to one decimal."""
    return pd.DataFrame({
        "model": essential["model"], "task": essential["task"], "method": essential["method"],
        "essential sparsity [interval]": [
            claims_module.essential_text(row) for _, row in essential.iterrows()],
        "dense": essential["dense_value"].map(_one_decimal),
        "at essential sparsity": essential["value_at_essential"].map(_one_decimal),
        "next sparsity": essential["next_sparsity"].map(lambda s: "" if pd.isna(s) else f"{s:g}"),
        "drop at next": essential["drop_at_next"].map(_one_decimal)})


def page(figures: list[dict], essential: pd.DataFrame, claims: pd.DataFrame,
         facts: dict[str, str], level: float) -> str:
    """The HTML of the report; `figures` are dicts with name, png, notebook (paths relative to
    the page) and caption."""
    counts = claims["verdict"].value_counts()
    readable = essential_for_readers(essential)
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<title>Essential sparsity: the report</title>",
             f"<style>{STYLE}</style></head><body>",
             "<h1>The Emergence of Essential Sparsity in Large Pre-trained Models, rebuilt</h1>",
             f"<p>Profile <code>{html.escape(facts['profile'])}</code>: {len(figures)} figures, "
             f"of the paper's {len(claims)} claims "
             + ", ".join(f"{counts.get(v, 0)} {v}" for v in claims_module.VERDICTS) + ".</p>",
             "<h2>The paper's claims</h2>",
             _table(claims, ["figure", "claim", "paper", "ours", "verdict", "detail"],
                    classes="verdict"),
             "<h2>Essential sparsity</h2><p>The largest sparsity on the grid whose test metric "
             "stays within epsilon of the dense model, with the grid sparsities it falls "
             f"between in {level:.0%} of the paired bootstrap's resamples; metrics in points.</p>",
             _table(readable, list(readable.columns)),
             "<h2>Figures</h2>"]
    drawn: set[int] = set()
    for figure in figures:
        number = paper_figure(figure["name"])
        whose = (f"the paper's Figure {number}" if number not in drawn
                 else f"an extra figure beside the paper's Figure {number}")
        drawn.add(number)
        parts.append(
            f"<figure id='{html.escape(figure['name'])}'>"
            f"<img src='{html.escape(figure['png'])}' alt='Figure {number}'>"
            f"<figcaption><b>Figure {number}</b> ({whose}). "
            f"{html.escape(figure['caption'])} "
            f"<a href='{html.escape(figure['notebook'])}'>The notebook that drew it.</a>"
            "</figcaption></figure>")
    parts += ["<h2>Provenance</h2>",
              "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                                  for k, v in facts.items()) + "</table>",
              "</body></html>"]
    return "\n".join(parts) + "\n"


def write_report(out: str | Path, pngs: list[str | Path], notebooks_dir: str | Path,
                 captions_dir: str | Path, essential_csv: str | Path, claims_csv: str | Path,
                 params_file: str | Path, profile: str, level: float) -> None:
    out = Path(out)
    figures = []
    for png in sorted(map(Path, pngs)):
        caption = Path(captions_dir) / f"{png.stem}.rst"
        notebook = Path(notebooks_dir) / f"{png.stem}.html"
        if not caption.is_file():
            raise ArtefactError(f"{caption}: every figure needs a caption file; add one")
        figures.append({"name": png.stem, "png": os.path.relpath(png, out.parent),
                        "notebook": os.path.relpath(notebook, out.parent),
                        "caption": " ".join(caption.read_text().split())})
    text = page(figures, pd.read_csv(essential_csv), pd.read_csv(claims_csv),
                provenance(params_file, profile), level)
    with atomic_path(out) as tmp:
        tmp.write_text(text)
