"""The paper's quantitative claims, checked against our tables (the list is workflow/claims.yaml).

Each claim names a check: a function of the result tables and the claim's own arguments (the
paper's numbers) that returns our number, a verdict and the reason. A claim whose tables this
profile does not build is "not run", never guessed. A claim of a difference counts only when the
difference exceeds the noise, and a claim of no difference only when it stays within it. The
noise of a point is the standard error of its mean over seeds or, with one seed, the binomial
standard error of an accuracy on its test examples; two points differ when they are more than
`NOISE_Z` standard errors apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..config.params import ParamsError
from ..records.io import ArtefactError

REPRODUCED, NOT_REPRODUCED, NOT_RUN = "reproduced", "not reproduced", "not run at this profile"
NOISE_Z = 2.0  # about 95%: a difference within two standard errors is noise
CLAIM_KEYS = {"id", "figure", "claim", "paper", "check", "args", "needs"}


def standard_error(value: float, value_std: float, seeds: int, examples: int) -> float:
    """Of a mean accuracy in points: over seeds when there are several, else binomial."""
    if seeds > 1:
        return value_std / math.sqrt(seeds)
    p = min(max(value / 100.0, 0.0), 1.0)
    return 100.0 * math.sqrt(p * (1.0 - p) / examples)


def _with_noise(drops: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    examples = runs.groupby(["model", "task"])["test_examples"].min()
    frame = drops.copy()
    frame["se"] = [standard_error(r.value, r.value_std, r.seeds, examples[(r.model, r.task)])
                   for r in frame.itertuples()]
    return frame


def _result(ours: str, ok: bool, detail: str) -> dict:
    return {"ours": ours, "verdict": REPRODUCED if ok else NOT_REPRODUCED, "detail": detail}


def essential_range(tables: dict[str, pd.DataFrame], method: str, low: float, high: float,
                    table: str = "essential_sparsity") -> dict:
    """Every task's essential sparsity (in `table`, one of the claim's needs) lies in the
    paper's range."""
    rows = tables[table].query("method == @method")
    values = {f"{r.task}": r.essential_sparsity for r in rows.itertuples()}
    inside = [low <= v <= high for v in values.values()]
    ours = ", ".join(f"{task} {v:g}" for task, v in values.items())
    return _result(ours, bool(inside) and all(inside),
                   f"{sum(inside)} of {len(inside)} tasks in [{low:g}, {high:g}]")


def sharp_turn(tables: dict[str, pd.DataFrame], method: str, min_ratio: float) -> dict:
    """Past the essential sparsity s*, the drop grows at least `min_ratio` times faster than
    before it. Before s* the drop stays within epsilon, so epsilon / s* bounds its slope."""
    essential = tables["essential_sparsity"].query("method == @method")
    drops = tables["drop_vs_sparsity"].query("method == @method")
    ratios, parts = [], []
    for r in essential.itertuples():
        curve = drops[(drops["model"] == r.model) & (drops["task"] == r.task)]
        last = curve.loc[curve["sparsity"].idxmax()]
        s = r.essential_sparsity
        if s == 0 or last["sparsity"] <= s:
            ratios.append(0.0)
            parts.append(f"{r.task}: no plateau" if s == 0 else f"{r.task}: no point past s*")
            continue
        at_s = float(curve.loc[curve["sparsity"] == s, "drop"].iloc[0])
        after = (float(last["drop"]) - at_s) / (float(last["sparsity"]) - s)
        ratios.append(after / (r.epsilon / s))
        parts.append(f"{r.task}: {ratios[-1]:.1f}x")
    ok = bool(ratios) and min(ratios) >= min_ratio
    return _result("; ".join(parts), ok, f"slope past s* over epsilon / s*, needs >= {min_ratio:g}")


def mask_cosine(tables: dict[str, pd.DataFrame], threshold: float, max_sparsity: float) -> dict:
    """LTH and OMP masks of the same sparsity are alike up to `max_sparsity`."""
    rows = tables["mask_similarity"].query("pair == 'lth-vs-omp' and sparsity <= @max_sparsity")
    if rows.empty:
        return {"ours": "-", "verdict": NOT_RUN, "detail": "no LTH round up to that sparsity"}
    low = rows.loc[rows["cosine"].idxmin()]
    return _result(f"min {low['cosine']:.3f} ({low['task']} at {low['sparsity']:g})",
                   bool(low["cosine"] > threshold),
                   f"{len(rows)} pairs up to sparsity {max_sparsity:g}, all above {threshold:g}?")


def lth_matches_omp(tables: dict[str, pd.DataFrame], method: str, max_sparsity: float) -> dict:
    """Within the essential range (and below `max_sparsity`), LTH and OMP fine-tune to the same
    metric: every difference within the noise."""
    noisy = _with_noise(tables["drop_vs_sparsity"], tables["finetune_runs"])
    essential = tables["essential_sparsity"].query("method == @method")
    worst, checked = None, 0
    for r in essential.itertuples():
        top = min(r.essential_sparsity, max_sparsity)
        task = noisy[(noisy["model"] == r.model) & (noisy["task"] == r.task)
                     & (noisy["sparsity"] > 0) & (noisy["sparsity"] <= top)]
        both = task[task["method"] == "lth"].merge(task[task["method"] == method],
                                                   on="sparsity", suffixes=("_lth", "_omp"))
        for b in both.itertuples():
            z = abs(b.value_lth - b.value_omp) / math.hypot(b.se_lth, b.se_omp)
            checked += 1
            if worst is None or z > worst[0]:
                worst = (z, r.task, b.sparsity, b.value_lth - b.value_omp)
    if worst is None:
        return {"ours": "-", "verdict": NOT_RUN,
                "detail": "no LTH point inside any essential range"}
    z, task, sparsity, diff = worst
    return _result(f"largest gap {diff:+.1f} points ({task} at {sparsity:g}, {z:.1f} SE)",
                   z <= NOISE_Z, f"{checked} points, each within {NOISE_Z:g} standard errors?")


def nm_within_epsilon(tables: dict[str, pd.DataFrame], sparsity: float) -> dict:
    """N:M masks of the given sparsity stay within epsilon of dense on every task."""
    nm = tables["nm_patterns"].query("sparsity == @sparsity")
    if nm.empty:
        return {"ours": "-", "verdict": NOT_RUN, "detail": f"no N:M pattern at {sparsity:g}"}
    epsilon = float(tables["essential_sparsity"]["epsilon"].iloc[0])
    ours = ", ".join(f"{r.pattern} {r.task} {r.drop:.1f}" for r in nm.itertuples())
    return _result(ours, bool((nm["drop"] <= epsilon).all()),
                   f"drops in points; each within epsilon = {epsilon:g}?")


def _llm_unstructured(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    runs = tables["llm_zero_shot"]
    return runs[runs["pattern"].fillna("") == ""]


def llm_free_sparsity(tables: dict[str, pd.DataFrame], method: str, epsilon: float,
                      min_sparsity: float) -> dict:
    """Every causal LM keeps its zero-shot accuracy within epsilon up to at least min_sparsity
    under `method`, with no fine-tuning: its essential sparsity, read as for fine-tuned models
    (the largest sparsity whose drop is at most epsilon). The dense accuracy's binomial standard
    error is reported beside it, since a few hundred questions are a noisy yardstick."""
    runs = _llm_unstructured(tables)
    found, parts = [], []
    for model, mine in runs.groupby("model"):
        curve = mine[(mine["method"] == method) | (mine["sparsity"] == 0)]
        free = curve[curve["accuracy_drop"] <= epsilon]["sparsity"].max()
        dense = mine[mine["sparsity"] == 0].iloc[0]
        se = standard_error(dense["accuracy"], 0.0, 1, int(dense["questions"]))
        found.append(free)
        parts.append(f"{model} {free:g} (dense accuracy {dense['accuracy']:.1f} +/- {se:.1f})")
    ok = bool(found) and min(found) >= min_sparsity
    return _result("; ".join(parts), ok, f"largest sparsity within {epsilon:g} point, "
                   f"needs >= {min_sparsity:g}")


def llm_better_at_highest(tables: dict[str, pd.DataFrame], better: str, than: str) -> dict:
    """At the largest sparsity both methods ran, `better` leaves every causal LM a lower
    held-out perplexity than `than` (perplexity: thousands of tokens, far less noisy than the
    questions)."""
    runs = _llm_unstructured(tables)
    wins, parts = [], []
    for model, mine in runs.groupby("model"):
        at = mine.pivot_table(index="sparsity", columns="method", values="perplexity")
        at = at[[better, than]].dropna()
        top = at.index.max()
        wins.append(at.loc[top, better] < at.loc[top, than])
        parts.append(f"{model} at {top:g}: {better} {at.loc[top, better]:.1f} vs "
                     f"{than} {at.loc[top, than]:.1f}")
    return _result("; ".join(parts), bool(wins) and all(wins),
                   f"held-out perplexity, {better} lower at the largest sparsity?")


def _near_zero_curves(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    zeros = tables["pretrain_zero_weights"]
    return zeros[zeros["component"] == "all"].sort_values(["fraction", "step"])


def abrupt_sparsification(tables: dict[str, pd.DataFrame], min_ratio: float) -> dict:
    """In every pre-training run the near-zero weights of the scope grow overall, and over one
    checkpoint interval at least `min_ratio` times faster than over the median interval: a jump,
    not a steady drift. (Checkpoint counts are exact: no noise to allow for.)"""
    ratios, parts = [], []
    curves = _near_zero_curves(tables).sort_values(["fraction", "step"], ascending=[False, True])
    for fraction, run in curves.groupby("fraction", sort=False):
        rate = (run["near_zero"].diff() / run["step"].diff()).iloc[1:]
        grew = run["near_zero"].iloc[-1] > run["near_zero"].iloc[0]
        median, steepest = float(rate.median()), float(rate.max())
        # A flat curve with one jump has median growth 0: the most abrupt of all.
        ratio = (0.0 if not grew or steepest <= 0
                 else steepest / median if median > 0 else math.inf)
        ratios.append(ratio)
        step = int(run["step"].iloc[1:].to_numpy()[rate.to_numpy().argmax()])
        parts.append(f"{fraction:.0%}: {int(run['near_zero'].iloc[0])} -> "
                     f"{int(run['near_zero'].iloc[-1])}, steepest {ratio:.1f}x at step {step}")
    return _result("; ".join(parts), bool(ratios) and min(ratios) >= min_ratio,
                   f"near-zero count grows, steepest interval >= {min_ratio:g}x the median?")


def more_data_more_sparsity(tables: dict[str, pd.DataFrame]) -> dict:
    """The largest data fraction ends pre-training with the largest share of near-zero weights,
    and fine-tunes best: its mean accuracy over every task and sparsity exceeds each other
    fraction's by more than the noise (binomial standard errors of the points combined)."""
    curves = _near_zero_curves(tables)
    last = curves.groupby("fraction")["near_zero_share"].last()
    drops = tables["pretrain_drop_vs_sparsity"]
    drops = drops.assign(se=[standard_error(r.value, r.value_std, r.seeds, r.test_examples)
                             for r in drops.itertuples()])
    means = drops.groupby("fraction").agg(value=("value", "mean"),
                                          se=("se", lambda se: math.sqrt((se ** 2).sum())
                                              / len(se)))
    top = means.index.max()
    beats = [(means.loc[top, "value"] - r.value) / math.hypot(means.loc[top, "se"], r.se)
             for f, r in means.iterrows() if f != top]
    ours = ("near-zero share at the last step " + ", ".join(f"{f:.0%} {v:.4f}" for f, v in
                                                            last.sort_index(ascending=False)
                                                            .items())
            + "; mean accuracy " + ", ".join(f"{f:.0%} {r.value:.1f}" for f, r in
                                              means.sort_index(ascending=False).iterrows()))
    ok = last.idxmax() == top and bool(beats) and min(beats) > NOISE_Z
    return _result(ours, ok, f"{top:.0%} has the most near-zero weights and beats every other "
                   f"fraction by more than {NOISE_Z:g} SE?")


def _by_role(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {role: frame[frame["role"] == role] for role in ("supervised", "self-supervised")}


def ssl_more_zeros(tables: dict[str, pd.DataFrame]) -> dict:
    """Over every block, the self-supervised checkpoint has the larger share of near-zero
    normalized weights (exact counts from the checkpoints: no noise to allow for)."""
    zeros = tables["vision_zero_weights"]
    shares = {role: float(rows.loc[rows["layer"].astype(str) == "all", "near_zero_share"].iloc[0])
              for role, rows in _by_role(zeros).items()}
    relative = shares["self-supervised"] / shares["supervised"] - 1
    ours = (f"near-zero share: SL {100 * shares['supervised']:.2f}%, SSL "
            f"{100 * shares['self-supervised']:.2f}% ({100 * relative:+.1f}% relative)")
    return _result(ours, relative > 0, "SSL share above SL's?")


def ssl_more_sparsity(tables: dict[str, pd.DataFrame]) -> dict:
    """On every task the self-supervised model's essential sparsity is at least the supervised
    one's, and larger on one at least; its mean drop over the grid is smaller on every task."""
    essential = tables["vision_essential_sparsity"].set_index(["model", "task"])
    essential = essential["essential_sparsity"]
    drops = _by_role(tables["vision_drop_vs_sparsity"])
    models = {role: rows["model"].iloc[0] for role, rows in drops.items()}
    parts, at_least, larger, smaller = [], [], [], []
    for task in sorted(drops["supervised"]["task"].unique()):
        sl, ssl = (essential.loc[(models[r], task)] for r in ("supervised", "self-supervised"))
        mean = {r: rows.loc[rows["task"] == task, "drop"].mean() for r, rows in drops.items()}
        at_least.append(ssl >= sl)
        larger.append(ssl > sl)
        smaller.append(mean["self-supervised"] < mean["supervised"])
        parts.append(f"{task}: s* SL {sl:g} vs SSL {ssl:g}, mean drop SL "
                     f"{mean['supervised']:.1f} vs SSL {mean['self-supervised']:.1f}")
    ok = bool(parts) and all(at_least) and any(larger) and all(smaller)
    return _result("; ".join(parts), ok, "SSL's essential sparsity >= SL's everywhere (> once) "
                   "and its mean drop smaller on every task?")


CHECKS: dict[str, Callable[..., dict]] = {
    "essential_range": essential_range, "sharp_turn": sharp_turn, "mask_cosine": mask_cosine,
    "lth_matches_omp": lth_matches_omp, "nm_within_epsilon": nm_within_epsilon,
    "llm_free_sparsity": llm_free_sparsity, "llm_better_at_highest": llm_better_at_highest,
    "abrupt_sparsification": abrupt_sparsification,
    "more_data_more_sparsity": more_data_more_sparsity, "ssl_more_zeros": ssl_more_zeros,
    "ssl_more_sparsity": ssl_more_sparsity}


def validate(claims: list[dict]) -> None:
    """A claim file error names the claim and the fix, before anything is evaluated."""
    for i, claim in enumerate(claims):
        name = claim.get("id", f"#{i + 1}")
        unknown = set(claim) - CLAIM_KEYS
        missing = {"id", "figure", "claim", "paper", "needs"} - set(claim)
        if unknown or missing:
            raise ParamsError(f"claim {name}: unknown keys {sorted(unknown)}, missing "
                             f"{sorted(missing)}; allowed keys: {sorted(CLAIM_KEYS)}")
        if claim.get("check") is not None and claim["check"] not in CHECKS:
            raise ParamsError(f"claim {name}: check {claim['check']!r} is unknown (allowed: "
                             f"{', '.join(CHECKS)}, or none until its tables exist)")


def evaluate_claims(claims: list[dict], tables_dir: str | Path) -> pd.DataFrame:
    """One row per claim: the paper's number, ours, the verdict and why."""
    validate(claims)
    tables_dir = Path(tables_dir)
    rows = []
    for claim in claims:
        missing = [n for n in claim["needs"] if not (tables_dir / f"{n}.csv").is_file()]
        if missing or claim.get("check") is None:
            result = {"ours": "-", "verdict": NOT_RUN, "detail": "needs "
                      + ", ".join(f"{n}.csv" for n in (missing or claim["needs"]))}
        else:
            tables = {n: _read(tables_dir / f"{n}.csv") for n in claim["needs"]}
            result = CHECKS[claim["check"]](tables, **claim.get("args", {}))
        rows.append({"id": claim["id"], "figure": claim["figure"], "claim": claim["claim"],
                     "paper": claim["paper"], **result})
    return pd.DataFrame(rows, columns=["id", "figure", "claim", "paper", "ours", "verdict",
                                       "detail"])


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ArtefactError(f"{path}: not a readable table ({exc}); rebuild it with "
                            f"`snakemake tables`") from exc


def claims_markdown(table: pd.DataFrame, profile: str) -> str:
    counts = table["verdict"].value_counts()
    lines = ["# The paper's claims, checked against this build", "",
             f"Profile `{profile}`. " + ", ".join(f"{counts.get(v, 0)} {v}" for v in
                                                   (REPRODUCED, NOT_REPRODUCED, NOT_RUN)) + ".",
             "Each verdict is computed from the tables under `results/tables/` by the check named "
             "in `workflow/claims.yaml`; differences count only beyond "
             f"{NOISE_Z:g} standard errors.", "",
             "| figure | claim | paper | ours | verdict | how |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.figure} | {r.claim} | {r.paper} | {r.ours} | **{r.verdict}** | {r.detail} |"
              for r in table.itertuples()]
    return "\n".join(lines) + "\n"
