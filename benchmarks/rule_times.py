"""Per-rule wall time and peak memory of a pipeline build, from the benchmark files Snakemake
writes for every job (`benchmark:` in workflow/rules/*.smk): results/benchmarks/<rule>/....tsv,
one file a job, mirroring the job's log path.

    python -m benchmarks.rule_times              # the build in this checkout
    python -m benchmarks.rule_times --root DIR   # another checkout's build
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = Path("results", "benchmarks")
# every rule with a shell command, in pipeline order
RULES = ("split_task", "prune", "finetune_run", "lth_round", "tabulate", "mask_similarity",
         "mask_table", "draw_fig01", "draw_fig02", "draw_fig05", "draw_fig09", "draw_fig10")


def _number(value: str | None) -> float | None:
    """Snakemake writes NA (or -) where it sampled nothing, e.g. max_rss of a very short job."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def read_job(path: Path) -> dict:
    """One job's seconds and max RSS (MB); with --benchmark-repeats, the mean and the max."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: an empty benchmark file")
    seconds = [s for s in (_number(r.get("s")) for r in rows) if s is not None]
    rss = [m for m in (_number(r.get("max_rss")) for r in rows) if m is not None]
    return {"s": statistics.fmean(seconds) if seconds else None, "max_rss": max(rss, default=None)}


def collect(root: Path) -> dict[str, list[dict]]:
    jobs: dict[str, list[dict]] = {}
    base = root / BENCHMARKS
    for path in sorted(base.rglob("*.tsv")):
        rule = path.relative_to(base).parts[0]
        jobs.setdefault(rule, []).append(read_job(path))
    return jobs


def _row(name: str, jobs: list[dict]) -> str:
    seconds = [j["s"] for j in jobs if j["s"] is not None]
    rss = [j["max_rss"] for j in jobs if j["max_rss"] is not None]
    median = f"{statistics.median(seconds):.1f}" if seconds else "-"
    peak = f"{max(rss):.0f}" if rss else "-"
    return (f"| {name} | {len(jobs)} | {sum(seconds):.1f} | {median} "
            f"| {max(seconds, default=0.0):.1f} | {peak} |")


def report(root: Path) -> str:
    jobs = collect(root)
    lines = ["## Wall time per rule of the pipeline build", "",
             f"From Snakemake's per-job benchmark files under `{root / BENCHMARKS}`: wall seconds "
             "and peak resident memory of each job, summed and summarised per rule. The total is "
             "job time added up (the build's wall time is shorter where jobs ran side by side). "
             "No target: this shows where a build's time goes.", ""]
    if not jobs:
        lines.append(f"Not measured: no benchmark files under `{root / BENCHMARKS}` (build the "
                     "pipeline with the `benchmark:` directives in place first).")
        return "\n".join(lines)
    order = [r for r in RULES if r in jobs] + sorted(set(jobs) - set(RULES))
    lines += ["| rule | jobs | total s | median s | max s | max RSS MB |",
              "|---|---|---|---|---|---|"]
    lines += [_row(rule, jobs[rule]) for rule in order]
    lines.append(_row("**all jobs**", [j for rule in order for j in jobs[rule]]))
    missing = [r for r in RULES if r not in jobs]
    if missing:
        lines += ["", "No benchmark files for: " + ", ".join(f"`{r}`" for r in missing)
                  + " (built before the `benchmark:` directives, or not part of this build)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout with a build")
    args = parser.parse_args()
    print(report(args.root.resolve()))


if __name__ == "__main__":
    main()
