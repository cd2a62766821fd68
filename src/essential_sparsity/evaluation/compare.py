"""`essential-sparsity compare OTHER`: this build's tables against another build's.

A reviewer who rebuilds on their own machine needs to know whether their numbers are the
published ones, and a byte comparison cannot tell them: builds on different CPUs differ in the low
bits of every float, and a fine-tuning run amplifies that into a different count of correct test
examples. So every cell of every tidy table (results/tables/*.csv) is compared with a tolerance
that separates noise from a real difference, and the two answers the paper rests on are compared
outright: each model and task's essential sparsity (a point of the sparsity grid: equal or not)
and each claim's verdict.

The default tolerance is the claims' own rule (`claims.NOISE_Z` standard errors, `claims.
standard_error`): a metric cell (an accuracy, a value, a drop, in points) differs when the two
builds' points are more than two standard errors apart, the standard error of each being the
binomial one over its test examples, or the one over seeds where a point averages several. A
number with no such noise (a loss, a cosine, a share of weights) differs beyond a relative 1e-5
(the tables hold 6 significant digits, so a last-digit flip stays below it); a count differs when
it is not equal; text differs when it is not equal. Times (`*_time_s`) are never compared, and
claims.csv only by verdict (its other columns are text that quotes the tables). `--tolerance T`
replaces every rule by one absolute tolerance T, in each column's units (0: bit for bit).

OTHER is a build's project directory or a git revision of this repository: the tables its dvc.lock
names are fetched through DVC (this repository's cache first, then its remote) into a temporary
directory, so `compare HEAD` holds a rebuild against the committed, published build.
"""

from __future__ import annotations

import math
import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..records.io import ArtefactError
from .claims import NOISE_Z, standard_error

TABLES = Path("results") / "tables"
CLAIMS = "claims.csv"
ESSENTIAL_TABLES = ("essential_sparsity.csv", "vision_essential_sparsity.csv",
                    "arithmetic_essential_sparsity.csv")
# Columns that name a row rather than measure it, in the order a row's label lists them. Columns
# that follow from these (dataset, objective, role, fraction, n and m) are compared as values.
KEY_COLUMNS = ("id", "model", "task", "method", "omp_method", "level", "pattern", "benchmark",
               "pair", "other", "component", "layer", "sparsity", "seed", "step", "bin_left",
               "bin_right")
# `sparsity` names a grid point in most tables but measures a component in Figure 1's: it is a
# key only where the other keys do not already tell the rows apart.
VALUE_LIKE_KEYS = ("sparsity",)
# Metric columns, in points: the two-standard-error rule applies to them.
METRIC_COLUMNS = {"value", "value_std", "dense_value", "drop", "drop_low", "drop_high",
                  "value_at_essential", "drop_at_next", "lth_value", "omp_value", "difference",
                  "lth_std", "omp_std", "omp_global_drop", "validation_value", "accuracy",
                  "accuracy_drop"}
# The accuracy a row's standard error is computed from, with its spread and test examples.
POINT_COLUMNS = ("value", "accuracy", "value_at_essential", "lth_value")
STD_COLUMNS = ("value_std", "lth_std")
EXAMPLE_COLUMNS = ("test_examples", "questions")
RELATIVE = 1e-5
SHOW = 10  # differing cells listed per table; the rest are counted


def is_metric(column: str) -> bool:
    """Accuracies, values and drops in points (MMLU's per-category accuracies included)."""
    return column in METRIC_COLUMNS or column.startswith("accuracy_")


def is_time(column: str) -> bool:
    """Wall and prune times differ from run to run by nature: never a difference."""
    return column.endswith("_time_s")


def read_tables(directory: Path) -> dict[str, pd.DataFrame]:
    """Every tidy table of a build, by file name."""
    tables = {}
    for path in sorted(directory.glob("*.csv")):
        try:
            tables[path.name] = pd.read_csv(path)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ArtefactError(f"{path}: not a readable table ({exc})") from exc
        except pd.errors.EmptyDataError:
            tables[path.name] = pd.DataFrame()
    return tables


def bit_identical(ours: Path, theirs: Path) -> bool:
    """The same table files with the same bytes: nothing to tolerate, one line to say."""
    names = sorted(p.name for p in ours.glob("*.csv"))
    return (names == sorted(p.name for p in theirs.glob("*.csv"))
            and all((ours / n).read_bytes() == (theirs / n).read_bytes() for n in names))


def examples_by_task(tables: dict[str, pd.DataFrame]) -> dict[tuple[str, str], int]:
    """Test examples of each (model, task), from whichever tables of the build record them: the
    drop tables do not, and their standard errors need them (as `claims` reads them from the
    runs table)."""
    found: dict[tuple[str, str], int] = {}
    for frame in tables.values():
        if not {"model", "task", "test_examples"} <= set(frame.columns):
            continue
        for (model, task), n in frame.groupby(["model", "task"])["test_examples"].min().items():
            if pd.notna(n):
                key = (str(model), str(task))
                found[key] = min(int(n), found.get(key, int(n)))
    return found


def row_standard_errors(frame: pd.DataFrame,
                        examples: dict[tuple[str, str], int]) -> pd.Series:
    """Each row's standard error of its metric, in points, by the claims' `standard_error`; NaN
    where the row has no accuracy or its test examples are unknown."""
    point = next((c for c in POINT_COLUMNS if c in frame.columns), None)
    std = next((c for c in STD_COLUMNS if c in frame.columns), None)
    count = next((c for c in EXAMPLE_COLUMNS if c in frame.columns), None)
    if point is None:
        return pd.Series(math.nan, index=frame.index, dtype=float)
    errors = []
    for _, row in frame.iterrows():
        n = row[count] if count else examples.get((str(row.get("model")), str(row.get("task"))))
        seeds = row.get("seeds", 1)
        spread = row[std] if std else 0.0
        if pd.isna(row[point]) or n is None or pd.isna(n) or n <= 0 or (
                pd.isna(seeds) or (seeds > 1 and pd.isna(spread))):
            errors.append(math.nan)
        else:
            errors.append(standard_error(float(row[point]), float(spread or 0.0), int(seeds),
                                         int(n)))
    return pd.Series(errors, index=frame.index, dtype=float)


def row_keys(ours: pd.DataFrame, theirs: pd.DataFrame) -> list[str]:
    """The key columns both builds' copies of a table have, less any value-like one the others
    do without."""
    keys = [k for k in KEY_COLUMNS if k in ours.columns and k in theirs.columns]
    for key in VALUE_LIKE_KEYS:
        rest = [k for k in keys if k != key]
        if key in keys and rest and not ours.duplicated(rest).any() and not theirs.duplicated(
                rest).any():
            keys = rest
    return keys


def _text(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _keyed(frame: pd.DataFrame, keys: list[str], numbered: bool) -> pd.DataFrame:
    """Keys as text (so the two builds' rows meet whatever dtype each file gave them), and the
    occurrence of each key where the keys do not tell the rows apart."""
    out = frame.copy()
    for key in keys:
        out[key] = out[key].map(_text)
    if numbered:
        out["#"] = out.groupby(keys).cumcount() if keys else range(len(out))
    return out


def _label(row: pd.Series, keys: list[str], numbered: bool) -> str:
    """`model=minilm-l6 task=bbc-news ...`, and which of the rows with those keys."""
    label = " ".join(f"{k}={row[k]}" for k in keys if row[k] != "")
    if numbered:
        label += f" (row {row['#'] + 1}{' of these keys' if keys else ''})"
    return label.strip()


def _cell(name: str, row: str, column: str, ours, theirs, difference=math.nan,
          tolerance=math.nan, beyond: bool = True) -> dict:
    return {"table": name, "row": row, "column": column, "ours": ours, "theirs": theirs,
            "difference": difference, "tolerance": tolerance, "beyond": beyond}


def _tolerances(column: str, x: pd.Series, y: pd.Series, se: pd.DataFrame, exact: bool,
                tolerance: float | None) -> pd.Series:
    """How far apart a column's two copies may be, cell by cell (see the module's rules)."""
    if tolerance is not None:
        return pd.Series(tolerance, index=x.index, dtype=float)
    relative = RELATIVE * pd.concat([x.abs(), y.abs()], axis=1).max(axis=1)
    if is_metric(column):
        noise = NOISE_Z * (se["ours"] ** 2 + se["theirs"] ** 2) ** 0.5
        return noise.fillna(0.0 if exact else relative)
    return pd.Series(0.0, index=x.index) if exact else relative


def table_differences(name: str, ours: pd.DataFrame, theirs: pd.DataFrame,
                      examples: tuple[dict, dict], tolerance: float | None) -> pd.DataFrame:
    """Every cell of one table whose two copies differ (rows and columns one build lacks too),
    with the difference (ours minus theirs), the tolerance and whether it is beyond it."""
    cells = []
    keys = row_keys(ours, theirs)
    numbered = (ours.duplicated(keys).any() or theirs.duplicated(keys).any()) if keys else True
    ours_k, theirs_k = _keyed(ours, keys, numbered), _keyed(theirs, keys, numbered)
    ours_k["__se"] = row_standard_errors(ours, examples[0])
    theirs_k["__se"] = row_standard_errors(theirs, examples[1])
    on = keys + (["#"] if numbered else [])
    for column in [c for c in ours.columns if c not in theirs.columns and not is_time(c)]:
        cells.append(_cell(name, "(every row)", column, "present", "absent"))
    for column in [c for c in theirs.columns if c not in ours.columns and not is_time(c)]:
        cells.append(_cell(name, "(every row)", column, "absent", "present"))
    compared = [c for c in ours.columns if c in theirs.columns and c not in on and not is_time(c)]
    merged = ours_k[on + compared + ["__se"]].merge(
        theirs_k[on + compared + ["__se"]], on=on, how="outer", suffixes=("@ours", "@theirs"),
        indicator=True, sort=False)
    labels = (merged.apply(lambda r: _label(r, keys, numbered), axis=1) if len(merged)
              else pd.Series(dtype=str))
    for i in merged.index[merged["_merge"] != "both"]:
        mine = merged.at[i, "_merge"] == "left_only"
        cells.append(_cell(name, labels[i], "(whole row)", "present" if mine else "absent",
                           "absent" if mine else "present"))
    both = merged[merged["_merge"] == "both"]
    se = pd.DataFrame({"ours": both["__se@ours"], "theirs": both["__se@theirs"]})
    for column in compared:
        a, b = both[f"{column}@ours"], both[f"{column}@theirs"]
        numeric = all(pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
                      for s in (ours[column], theirs[column]))
        if numeric:
            exact = all(pd.api.types.is_integer_dtype(s) for s in (ours[column], theirs[column]))
            x, y = a.astype(float), b.astype(float)
            allowed = _tolerances(column, x, y, se, exact, tolerance)
            lone = x.isna() != y.isna()
            changed = lone | (x.notna() & y.notna() & (x != y))
            beyond = lone | ((x - y).abs() > allowed)
            for i in both.index[changed]:
                cells.append(_cell(name, labels[i], column, x[i], y[i], x[i] - y[i],
                                   allowed[i], bool(beyond[i])))
        else:
            sa, sb = a.map(_text), b.map(_text)
            for i in both.index[sa != sb]:
                cells.append(_cell(name, labels[i], column, sa[i], sb[i]))
    return pd.DataFrame(cells, columns=list(_cell("", "", "", "", "")))


def cell_differences(ours: dict[str, pd.DataFrame], theirs: dict[str, pd.DataFrame],
                     tolerance: float | None) -> pd.DataFrame:
    """Every table's differing cells (claims.csv is compared by verdict, not here), and the
    tables one build lacks."""
    examples = (examples_by_task(ours), examples_by_task(theirs))
    frames = []
    for name in sorted((set(ours) | set(theirs)) - {CLAIMS}):
        if name not in theirs or name not in ours:
            mine = name in ours
            frames.append(pd.DataFrame([_cell(name, "(whole table)", "-",
                                              "present" if mine else "absent",
                                              "absent" if mine else "present")]))
            continue
        frames.append(table_differences(name, ours[name], theirs[name], examples, tolerance))
    frames = [f for f in frames if len(f)]
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame(columns=list(_cell("", "", "", "", ""))))


def essential_agreement(ours: dict[str, pd.DataFrame],
                        theirs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per table, model, task and method: both builds' essential sparsity and whether they agree.
    It is a grid point, so it agrees only when it is the same point."""
    keys, rows = ["model", "task", "method"], []
    for name in ESSENTIAL_TABLES:
        if name not in ours and name not in theirs:
            continue
        empty = pd.DataFrame(columns=[*keys, "essential_sparsity"])
        a, b = (t.get(name, empty) for t in (ours, theirs))
        on = [k for k in keys if k in a.columns and k in b.columns]
        both = a[[*on, "essential_sparsity"]].merge(b[[*on, "essential_sparsity"]], on=on,
                                                     how="outer", suffixes=("_ours", "_theirs"))
        for r in both.to_dict("records"):
            x, y = r["essential_sparsity_ours"], r["essential_sparsity_theirs"]
            agrees = bool(pd.notna(x) and pd.notna(y) and math.isclose(x, y, abs_tol=1e-9))
            rows.append({"table": name, **{k: r.get(k, "") for k in keys}, "ours": x,
                         "theirs": y, "agrees": agrees})
    return pd.DataFrame(rows, columns=["table", *keys, "ours", "theirs", "agrees"])


def verdict_agreement(ours: dict[str, pd.DataFrame],
                      theirs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per claim: both builds' verdicts, whether they agree, and each build's number (`ours` of
    claims.csv) to show where they do not."""
    columns = ["id", "ours", "theirs", "agrees", "number_ours", "number_theirs"]
    if CLAIMS not in ours and CLAIMS not in theirs:
        return pd.DataFrame(columns=columns)
    empty = pd.DataFrame(columns=["id", "verdict", "ours"])
    a, b = (t.get(CLAIMS, empty)[["id", "verdict", "ours"]] for t in (ours, theirs))
    both = a.merge(b, on="id", how="outer", suffixes=("_ours", "_theirs"), sort=False)
    frame = pd.DataFrame({"id": both["id"], "ours": both["verdict_ours"].map(_text),
                          "theirs": both["verdict_theirs"].map(_text),
                          "number_ours": both["ours_ours"].map(_text),
                          "number_theirs": both["ours_theirs"].map(_text)})
    frame["agrees"] = (frame["ours"] == frame["theirs"]) & (frame["ours"] != "")
    return frame[columns]


@dataclass
class Comparison:
    """What `compare` found: the tables compared, whether they are bit-identical, and the three
    answers (cells, essential sparsities, verdicts)."""

    tables: int
    identical: bool
    cells: pd.DataFrame
    essential: pd.DataFrame
    claims: pd.DataFrame
    tolerance: float | None

    @property
    def agree(self) -> bool:
        return self.identical or not (self.cells["beyond"].any()
                                      or not self.essential["agrees"].all()
                                      or not self.claims["agrees"].all())


def compare_tables(ours: Path, theirs: Path, tolerance: float | None = None) -> Comparison:
    """Two directories of tidy tables, compared (see the module's rules)."""
    names = {p.name for p in ours.glob("*.csv")} | {p.name for p in theirs.glob("*.csv")}
    if bit_identical(ours, theirs):
        empty = pd.DataFrame()
        return Comparison(len(names), True, empty, empty, empty, tolerance)
    a, b = read_tables(ours), read_tables(theirs)
    return Comparison(len(names), False, cell_differences(a, b, tolerance),
                      essential_agreement(a, b), verdict_agreement(a, b), tolerance)


def _many(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _number(value) -> str:
    return _text(value) if isinstance(value, str) else _text(float(value)) or "-"


def report_lines(result: Comparison, ours: str, theirs: str, show: int = SHOW) -> list[str]:
    """The comparison as a reviewer reads it: one line for bit-identical builds; else the cells
    beyond the tolerance (at most `show` per table, the largest first; 0: all), every essential
    sparsity and every verdict, and a last line that says whether the builds agree."""
    if result.identical:
        return [f"compare: identical: the {result.tables} tables in {TABLES} of {ours} and "
                f"{theirs} are the same bytes"]
    rule = (f"{result.tolerance:g} on every number (--tolerance)" if result.tolerance is not None
            else f"metrics {NOISE_Z:g} standard errors of the two builds' points, other numbers "
                 f"relative {RELATIVE:g}, counts and text exact")
    lines = [f"compare {ours} (ours) with {theirs} (theirs): {result.tables} tables in {TABLES}; "
             f"difference = ours - theirs; tolerance: {rule}; *_time_s ignored; {CLAIMS} by "
             f"verdict"]
    cells = result.cells
    beyond = cells[cells["beyond"]] if len(cells) else cells
    noise = len(cells) - len(beyond)
    if beyond.empty:
        lines.append(f"tables: every cell agrees within the tolerance ({_many(noise, 'cell')} "
                     f"differ below it)")
    else:
        lines.append(f"tables: {_many(len(beyond), 'cell')} beyond the tolerance in "
                     f"{_many(beyond['table'].nunique(), 'table')} ({noise} more below it)")
        excess = (beyond["difference"].abs() / beyond["tolerance"].replace(0, math.nan)).fillna(
            math.inf)
        ordered = beyond.assign(excess=excess).sort_values(["table", "excess"],
                                                           ascending=[True, False], kind="stable")
        shown = ordered.groupby("table").head(show) if show else ordered
        printable = shown[["table", "row", "column", "ours", "theirs", "difference",
                           "tolerance"]].copy()
        for column in ("ours", "theirs", "difference", "tolerance"):
            printable[column] = printable[column].map(_number)
        lines += printable.to_string(index=False).splitlines()
        for table, count in ordered.groupby("table").size().items():
            if show and count > show:
                lines.append(f"... and {count - show} more cells of {table} beyond the tolerance")
    essential = result.essential
    lines.append(f"essential sparsity: {int(essential['agrees'].sum())} of {len(essential)} "
                 f"agree" if len(essential) else
                 f"essential sparsity: neither build has {', '.join(ESSENTIAL_TABLES)}")
    if len(essential):
        printable = essential.assign(
            ours=essential["ours"].map(_number), theirs=essential["theirs"].map(_number),
            agrees=essential["agrees"].map({True: "yes", False: "NO"}))
        lines += printable.to_string(index=False).splitlines()
    claims = result.claims
    lines.append(f"claims: {int(claims['agrees'].sum())} of {len(claims)} verdicts agree"
                 if len(claims) else f"claims: neither build has {CLAIMS}")
    if len(claims):
        printable = claims[["id", "ours", "theirs"]].assign(
            agrees=claims["agrees"].map({True: "yes", False: "NO"}))
        lines += printable.to_string(index=False).splitlines()
        for r in claims[~claims["agrees"].astype(bool)].itertuples():
            lines.append(f"{r.id}: ours {r.number_ours or '-'} | theirs {r.number_theirs or '-'}")
    if result.agree:
        lines.append("compare: the builds agree within the tolerance")
    else:
        essentials = len(essential) - int(essential["agrees"].sum())
        verdicts = len(claims) - int(claims["agrees"].sum())
        lines.append(f"compare: the builds differ ({_many(len(beyond), 'cell')}, "
                     f"{essentials} essential sparsit{'y' if essentials == 1 else 'ies'}, "
                     f"{_many(verdicts, 'verdict')})")
    return lines


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=False)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def fetch_revision_tables(root: Path, revision: str, into: Path) -> Path:
    """The tables a git revision's dvc.lock names, fetched into `into` through DVC's file system
    (this repository's cache, else its remote), without touching the working tree."""
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    top = _git(root, "rev-parse", "--show-toplevel")
    if commit is None or top is None:
        raise ArtefactError(f"{revision}: neither a build directory nor a git revision of {root}")
    from dvc.api import DVCFileSystem
    from dvc.exceptions import DvcException
    from dvc_data.index import DataIndexError

    tables = (root.resolve().relative_to(Path(top).resolve()) / TABLES).as_posix()
    try:
        fs = DVCFileSystem(top, rev=commit)
        if not fs.isdir(tables):
            raise ArtefactError(f"{revision}: its dvc.lock names no {TABLES}")
        fs.get(tables, str(into), recursive=True)
    except (DvcException, DataIndexError, OSError) as exc:
        raise ArtefactError(f"{revision}: its {TABLES} are in neither this repository's DVC "
                            f"cache nor a remote it reaches ({_one_line(exc)}); `dvc remote "
                            f"list` names the remotes") from exc
    return into


@contextmanager
def other_tables(root: Path, other: str) -> Iterator[tuple[Path, str]]:
    """OTHER's tables directory and how to name it: a build directory as it is, a git revision
    fetched into a temporary directory removed afterwards."""
    if Path(other).is_dir():
        yield _tables_of(Path(other)), other
        return
    with tempfile.TemporaryDirectory(prefix="compare-") as tmp:
        commit = _git(root, "rev-parse", "--short", f"{other}^{{commit}}")
        yield fetch_revision_tables(root, other, Path(tmp) / "tables"), f"{other} ({commit})"


def _tables_of(root: Path) -> Path:
    tables = root / TABLES
    if not tables.is_dir():
        raise ArtefactError(f"{root}: no {TABLES}; build it (make figures) or pull it (make pull)")
    return tables


def compare(root: str | Path, other: str, tolerance: float | None = None,
            show: int = SHOW) -> tuple[int, list[str]]:
    """The command: exit status (0 the builds agree within the tolerance, 1 they differ) and the
    report's lines. Bad input (no build, no such revision) raises ArtefactError: status 2."""
    root = Path(root)
    if tolerance is not None and not tolerance >= 0:
        raise ArtefactError(f"--tolerance {tolerance:g}: must be 0 or more")
    ours = _tables_of(root)
    with other_tables(root, other) as (theirs, label):
        result = compare_tables(ours, theirs, tolerance)
        return (0 if result.agree else 1), report_lines(result, str(root), label, show)
