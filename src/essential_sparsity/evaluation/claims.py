"""The paper's quantitative claims, checked against our tables (the list is workflow/claims.yaml).

Each claim names a check: a function of the result tables and the claim's own arguments (the
paper's numbers) that returns our number with its interval, a verdict and the reason. A claim is
reproduced when every interval it is decided on lies on the paper's side of the paper's line, not
reproduced when one lies wholly on the other side, and inconclusive when an interval straddles
the line; a claim whose tables this profile does not build is "not run", never guessed.

The intervals are the tables' own: the paired bootstrap of the fine-tuning drops and essential
sparsities (`bootstrap`). Where a table has none (the causal LMs' zero-shot accuracy, the mean
accuracy of a pre-training fraction), a value's interval is `NOISE_Z` standard errors either
side: of its mean over seeds or, with one seed, the binomial standard error of an accuracy on
its test examples. Counts read from checkpoints and masks are exact, so their claims have two
verdicts only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..config.params import ParamsError
from ..records.io import ArtefactError

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
NOT_RUN = "not run at this profile"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN)
NOISE_Z = 2.0  # about 95%: a difference within two standard errors is noise
CLAIM_KEYS = {"id", "figure", "claim", "paper", "check", "args", "needs"}


def standard_error(value: float, value_std: float, seeds: int, examples: int) -> float:
    """Of a mean accuracy in points: over seeds when there are several, else binomial."""
    if seeds > 1:
        return value_std / math.sqrt(seeds)
    p = min(max(value / 100.0, 0.0), 1.0)
    return 100.0 * math.sqrt(p * (1.0 - p) / examples)


def _decided(ours: str, supports: list[bool], contradicts: list[bool], detail: str) -> dict:
    """One entry per task (point, model): whether its interval lies wholly on the claim's side
    of the line, and whether wholly on the other side."""
    verdict = (NOT_REPRODUCED if any(contradicts)
               else REPRODUCED if supports and all(supports) else INCONCLUSIVE)
    return {"ours": ours, "verdict": verdict, "detail": detail}


def _exact(ours: str, ok: bool, detail: str) -> dict:
    """A claim on exact counts: nothing to be uncertain about."""
    return _decided(ours, [ok], [not ok], detail + " (exact counts: no interval)")


def _span(low: float, high: float, form: str = "g") -> str:
    return f"[{low:{form}}, {high:{form}}]"


def _drop(row: pd.Series) -> str:
    return f"{row['drop']:.1f} {_span(row['drop_low'], row['drop_high'], '.1f')}"


def essential_text(row: pd.Series) -> str:
    """An essential sparsity as every page shows it: the point value, then its interval."""
    return f"{row['essential_sparsity']:g} {_span(row['essential_low'], row['essential_high'])}"


def essential_range(tables: dict[str, pd.DataFrame], method: str, low: float, high: float,
                    table: str = "essential_sparsity") -> dict:
    """Every task's essential sparsity (in `table`, one of the claim's needs) lies in the
    paper's range: decided on its interval."""
    rows = list(tables[table].query("method == @method").itertuples())
    ours = ", ".join(f"{r.task} {essential_text(r._asdict())}" for r in rows)
    return _decided(ours, [low <= r.essential_low and r.essential_high <= high for r in rows],
                    [r.essential_high < low or r.essential_low > high for r in rows],
                    f"each task's essential sparsity interval inside [{low:g}, {high:g}]?")


def sharp_turn(tables: dict[str, pd.DataFrame], method: str, min_ratio: float) -> dict:
    """Past the essential sparsity s*, the drop grows at least `min_ratio` times faster than
    before it. Before s* the drop stays within epsilon, so epsilon / s* bounds its slope. The
    ratio's interval takes each end of the two drops' intervals (at s* and at the last point)."""
    essential = tables["essential_sparsity"].query("method == @method")
    drops = tables["drop_vs_sparsity"].query("method == @method")
    parts, supports, contradicts = [], [], []
    for r in essential.itertuples():
        curve = drops[(drops["model"] == r.model) & (drops["task"] == r.task)]
        last = curve.loc[curve["sparsity"].idxmax()]
        s = r.essential_sparsity
        if s == 0 or last["sparsity"] <= s:
            supports.append(False)
            contradicts.append(s == 0 and r.essential_high == 0)
            parts.append(f"{r.task}: no plateau" if s == 0 else f"{r.task}: no point past s*")
            continue
        at_s = curve.loc[curve["sparsity"] == s].iloc[0]
        scale = (float(last["sparsity"]) - s) * r.epsilon / s
        ratio = (last["drop"] - at_s["drop"]) / scale
        low = (last["drop_low"] - at_s["drop_high"]) / scale
        high = (last["drop_high"] - at_s["drop_low"]) / scale
        supports.append(low >= min_ratio)
        contradicts.append(high < min_ratio)
        parts.append(f"{r.task}: {ratio:.1f}x {_span(low, high, '.1f')}")
    return _decided("; ".join(parts), supports, contradicts,
                    f"slope past s* over epsilon / s*, its interval >= {min_ratio:g}?")


def mask_cosine(tables: dict[str, pd.DataFrame], threshold: float, max_sparsity: float) -> dict:
    """LTH and OMP masks of the same sparsity are alike up to `max_sparsity`."""
    rows = tables["mask_similarity"].query("pair == 'lth-vs-omp' and sparsity <= @max_sparsity")
    if rows.empty:
        return {"ours": "-", "verdict": NOT_RUN, "detail": "no LTH round up to that sparsity"}
    low = rows.loc[rows["cosine"].idxmin()]
    return _exact(f"min {low['cosine']:.3f} ({low['task']} at {low['sparsity']:g})",
                  bool(low["cosine"] > threshold),
                  f"{len(rows)} pairs up to sparsity {max_sparsity:g}, all above {threshold:g}?")


def lth_matches_omp(tables: dict[str, pd.DataFrame], method: str, max_sparsity: float) -> dict:
    """Within the essential range (and below `max_sparsity`), LTH masks fine-tune no better than
    OMP masks: no LTH-minus-OMP difference beyond epsilon, on its paired interval."""
    essential = tables["essential_sparsity"].query("method == @method")
    pairs = tables["lth_vs_omp"].query("omp_method == @method")
    epsilon = float(essential["epsilon"].iloc[0]) if len(essential) else 0.0
    checked = []
    for r in essential.itertuples():
        top = min(r.essential_sparsity, max_sparsity)
        checked.append(pairs[(pairs["model"] == r.model) & (pairs["task"] == r.task)
                             & (pairs["sparsity"] > 0) & (pairs["sparsity"] <= top)])
    points = pd.concat(checked) if checked else pairs.iloc[:0]
    if points.empty:
        return {"ours": "-", "verdict": NOT_RUN,
                "detail": "no LTH point inside any essential range"}
    worst = points.loc[points["difference_high"].idxmax()]
    ours = (f"largest gap {worst['difference']:+.1f} points "
            f"{_span(worst['difference_low'], worst['difference_high'], '+.1f')} "
            f"({worst['task']} at {worst['sparsity']:g})")
    return _decided(ours, list(points["difference_high"] <= epsilon),
                    list(points["difference_low"] > epsilon),
                    f"{len(points)} points; LTH minus OMP within epsilon = {epsilon:g}?")


def nm_within_epsilon(tables: dict[str, pd.DataFrame], sparsity: float) -> dict:
    """N:M masks of the given sparsity stay within epsilon of dense on every task."""
    nm = tables["nm_patterns"].query("sparsity == @sparsity")
    if nm.empty:
        return {"ours": "-", "verdict": NOT_RUN, "detail": f"no N:M pattern at {sparsity:g}"}
    epsilon = float(tables["essential_sparsity"]["epsilon"].iloc[0])
    ours = ", ".join(f"{r.pattern} {r.task} {_drop(r._asdict())}" for r in nm.itertuples())
    return _decided(ours, list(nm["drop_high"] <= epsilon), list(nm["drop_low"] > epsilon),
                    f"drops in points; each interval within epsilon = {epsilon:g}?")


def _llm_unstructured(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    runs = tables["llm_zero_shot"]
    return runs[runs["pattern"].fillna("") == ""]


def llm_free_sparsity(tables: dict[str, pd.DataFrame], method: str, epsilon: float,
                      min_sparsity: float) -> dict:
    """Every causal LM keeps its zero-shot accuracy within epsilon up to at least min_sparsity
    under `method`, with no fine-tuning: its essential sparsity, read as for fine-tuned models
    (the largest sparsity whose drop is at most epsilon). A few hundred questions are a noisy
    yardstick: the free sparsity's interval reads the curve at each end of the drops' intervals
    (the table's paired bootstrap over the questions)."""
    runs = _llm_unstructured(tables)
    parts, supports, contradicts = [], [], []
    for model, mine in runs.groupby("model"):
        curve = mine[(mine["method"] == method) | (mine["sparsity"] == 0)]
        dense = mine[mine["sparsity"] == 0].iloc[0]
        free = curve[curve["accuracy_drop"] <= epsilon]["sparsity"].max()
        low = curve[curve["accuracy_drop_high"] <= epsilon]["sparsity"].max()
        high = curve[curve["accuracy_drop_low"] <= epsilon]["sparsity"].max()
        supports.append(low >= min_sparsity)
        contradicts.append(high < min_sparsity)
        parts.append(f"{model} {free:g} {_span(low, high)} (dense accuracy "
                     f"{dense['accuracy']:.1f} on {int(dense['questions'])} questions)")
    return _decided("; ".join(parts), supports, contradicts,
                    f"largest sparsity within {epsilon:g} point, its interval >= "
                    f"{min_sparsity:g}?")


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
    return _exact("; ".join(parts), bool(wins) and all(wins),
                  f"held-out perplexity over thousands of tokens, {better} lower at the largest "
                  f"sparsity?")


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
    return _exact("; ".join(parts), bool(ratios) and min(ratios) >= min_ratio,
                  f"near-zero count grows, steepest interval >= {min_ratio:g}x the median?")


def more_data_more_sparsity(tables: dict[str, pd.DataFrame]) -> dict:
    """The largest data fraction ends pre-training with the largest share of near-zero weights,
    and fine-tunes best: its mean accuracy over every task and sparsity exceeds each other
    fraction's, the difference's interval `NOISE_Z` standard errors either side (the binomial
    standard errors of the points combined)."""
    curves = _near_zero_curves(tables)
    last = curves.groupby("fraction")["near_zero_share"].last()
    drops = tables["pretrain_drop_vs_sparsity"]
    drops = drops.assign(se=[standard_error(r.value, r.value_std, r.seeds, r.test_examples)
                             for r in drops.itertuples()])
    means = drops.groupby("fraction").agg(value=("value", "mean"),
                                          se=("se", lambda se: math.sqrt((se ** 2).sum())
                                              / len(se)))
    top = means.index.max()
    gaps = {f: (means.loc[top, "value"] - r.value, NOISE_Z * math.hypot(means.loc[top, "se"], r.se))
            for f, r in means.iterrows() if f != top}
    ours = ("near-zero share at the last step " + ", ".join(f"{f:.0%} {v:.4f}" for f, v in
                                                            last.sort_index(ascending=False)
                                                            .items())
            + f"; mean accuracy of {top:.0%} minus " + ", ".join(
                f"{f:.0%}: {gap:+.1f} {_span(gap - margin, gap + margin, '+.1f')}"
                for f, (gap, margin) in sorted(gaps.items(), reverse=True)))
    most = last.idxmax() == top
    return _decided(ours, [most and bool(gaps)] + [g - m > 0 for g, m in gaps.values()],
                    [not most] + [g + m < 0 for g, m in gaps.values()],
                    f"{top:.0%} has the most near-zero weights and its accuracy gap's interval "
                    f"above 0 for every other fraction?")


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
    return _exact(ours, relative > 0, "SSL share above SL's?")


def ssl_more_sparsity(tables: dict[str, pd.DataFrame]) -> dict:
    """On every task the self-supervised model's essential sparsity is at least the supervised
    one's (larger on one at least), and its mean drop over the grid is smaller beyond the drops'
    intervals (each end of the mean drop is the mean of that end). Not reproduced where SSL's
    essential sparsity interval lies wholly below SL's, or its mean drop wholly above."""
    essential = tables["vision_essential_sparsity"].set_index(["model", "task"])
    drops = _by_role(tables["vision_drop_vs_sparsity"])
    models = {role: rows["model"].iloc[0] for role, rows in drops.items()}
    parts, supports, contradicts, larger = [], [], [], []
    for task in sorted(drops["supervised"]["task"].unique()):
        sl, ssl = (essential.loc[(models[r], task)] for r in ("supervised", "self-supervised"))
        mean = {r: rows.loc[rows["task"] == task, ["drop", "drop_low", "drop_high"]].mean()
                for r, rows in drops.items()}
        sl_drop, ssl_drop = mean["supervised"], mean["self-supervised"]
        larger.append(ssl["essential_sparsity"] > sl["essential_sparsity"])
        supports.append(ssl["essential_sparsity"] >= sl["essential_sparsity"]
                        and ssl_drop["drop_high"] < sl_drop["drop_low"])
        contradicts.append(ssl["essential_high"] < sl["essential_low"]
                           or ssl_drop["drop_low"] > sl_drop["drop_high"])
        parts.append(f"{task}: s* SL {essential_text(sl)} vs SSL {essential_text(ssl)}, mean "
                     f"drop SL {_drop(sl_drop)} vs SSL {_drop(ssl_drop)}")
    return _decided("; ".join(parts), [*supports, any(larger)], contradicts,
                    "SSL's essential sparsity >= SL's everywhere (> once) and its mean drop "
                    "below SL's beyond the intervals on every task?")


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


def claims_markdown(table: pd.DataFrame, profile: str, level: float) -> str:
    counts = table["verdict"].value_counts()
    lines = ["# The paper's claims, checked against this build", "",
             f"Profile `{profile}`. " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)
             + ".",
             "Each verdict is computed from the tables under `results/tables/` by the check named "
             "in `workflow/claims.yaml`, on the intervals in brackets: the paired bootstrap's "
             f"central {level:.0%} for the fine-tuning drops and essential sparsities, "
             f"{NOISE_Z:g} standard errors either side where a table has no bootstrap. A claim is "
             "reproduced when every interval lies on the paper's side of its line, not "
             "reproduced when one lies wholly on the other side, inconclusive when one "
             "straddles it.", "",
             "| figure | claim | paper | ours | verdict | how |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.figure} | {r.claim} | {r.paper} | {r.ours} | **{r.verdict}** | {r.detail} |"
              for r in table.itertuples()]
    return "\n".join(lines) + "\n"
