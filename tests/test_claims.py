"""The paper's claims: verdicts follow from the tables, noise decides differences, a claim file
error is one clear line, and a claim whose tables are not built is not run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from essential_sparsity.config.params import ParamsError
from essential_sparsity.evaluation import claims

ROOT = Path(__file__).resolve().parents[1]


def write_tables(directory: Path, lth_gap: float, half_width: float = 1.0) -> Path:
    """A task whose OMP curve is flat to 0.4 and falls off after, with an LTH point at 0.2; every
    drop's (and the LTH-minus-OMP difference's) interval `half_width` either side."""
    omp = {0.0: 90.0, 0.2: 89.6, 0.4: 89.2, 0.6: 80.0, 0.8: 50.0}
    rows = [{"model": "m", "task": "t", "method": "omp-global", "sparsity": s, "metric": "accuracy",
             "value": v, "value_std": 0.0, "seeds": 1, "dense_value": 90.0, "drop": 90.0 - v,
             "drop_low": 90.0 - v - half_width, "drop_high": 90.0 - v + half_width}
            for s, v in omp.items()]
    pd.DataFrame(rows).to_csv(directory / "drop_vs_sparsity.csv", index=False)
    pd.DataFrame([{"model": "m", "task": "t", "method": "omp-global", "essential_sparsity": 0.4,
                   "essential_low": 0.4, "essential_high": 0.4, "epsilon": 1.0}]).to_csv(
        directory / "essential_sparsity.csv", index=False)
    pd.DataFrame([{"model": "m", "task": "t", "sparsity": 0.2, "omp_method": "omp-global",
                   "difference": lth_gap, "difference_low": lth_gap - half_width,
                   "difference_high": lth_gap + half_width}]).to_csv(
        directory / "lth_vs_omp.csv", index=False)
    return directory


def claim(check: str, needs: list[str], **args) -> dict:
    return {"id": check, "figure": 2, "claim": "c", "paper": "p", "check": check, "args": args,
            "needs": needs}


def verdict(directory: Path, item: dict) -> dict:
    return claims.evaluate_claims([item], directory).iloc[0].to_dict()


def test_binomial_standard_error_with_one_seed_and_the_mean_over_seeds():
    assert claims.standard_error(70.0, 0.0, 1, 1000) == pytest.approx(1.449, abs=1e-3)
    assert claims.standard_error(70.0, 2.0, 4, 1000) == pytest.approx(1.0)


@pytest.mark.parametrize(("gap", "half_width", "expected"), [
    (0.0, 0.5, claims.REPRODUCED),  # [-0.5, 0.5]: within epsilon = 1
    (6.0, 1.0, claims.NOT_REPRODUCED),  # [5, 7]: LTH better beyond epsilon
    (1.5, 0.3, claims.NOT_REPRODUCED),
    (1.5, 1.0, claims.INCONCLUSIVE),  # [0.5, 2.5] straddles epsilon
])
def test_lth_matches_omp_decided_on_the_paired_interval(tmp_path, gap, half_width, expected):
    item = claim("lth_matches_omp", ["lth_vs_omp", "essential_sparsity"], method="omp-global",
                 max_sparsity=0.5)
    result = verdict(write_tables(tmp_path, gap, half_width), item)
    assert result["verdict"] == expected
    assert f"[{gap - half_width:+.1f}, {gap + half_width:+.1f}]" in result["ours"]


def test_essential_range_and_sharp_turn_from_the_curve(tmp_path):
    write_tables(tmp_path, 0.0)
    inside = claim("essential_range", ["essential_sparsity"], method="omp-global", low=0.3,
                   high=0.5)
    assert verdict(tmp_path, inside)["verdict"] == claims.REPRODUCED
    outside = {**inside, "args": {"method": "omp-global", "low": 0.5, "high": 0.6}}
    assert verdict(tmp_path, outside)["verdict"] == claims.NOT_REPRODUCED
    (tmp_path / "essential_sparsity.csv").rename(tmp_path / "other_essential.csv")
    elsewhere = claim("essential_range", ["other_essential"], method="omp-global", low=0.3,
                      high=0.5, table="other_essential")
    assert verdict(tmp_path, elsewhere)["verdict"] == claims.REPRODUCED
    (tmp_path / "other_essential.csv").rename(tmp_path / "essential_sparsity.csv")
    straddling = pd.read_csv(tmp_path / "essential_sparsity.csv").assign(essential_low=0.2)
    straddling.to_csv(tmp_path / "straddling.csv", index=False)
    across = claim("essential_range", ["straddling"], method="omp-global", low=0.3, high=0.5,
                   table="straddling")
    result = verdict(tmp_path, across)
    assert result["verdict"] == claims.INCONCLUSIVE and "t 0.4 [0.2, 0.4]" in result["ours"]
    # past 0.4 the drop goes from 0.8 to 40 over 0.4: 98 points per unit, 39x epsilon / s*
    turn = claim("sharp_turn", ["essential_sparsity", "drop_vs_sparsity"], method="omp-global",
                 min_ratio=3.0)
    result = verdict(tmp_path, turn)
    assert result["verdict"] == claims.REPRODUCED and "39.2x [37.2, 41.2]" in result["ours"]
    write_tables(tmp_path, 0.0, half_width=20.0)  # the last drop as likely 20 as 60
    assert verdict(tmp_path, turn)["verdict"] == claims.INCONCLUSIVE


def test_no_plateau_is_no_turning_point(tmp_path):
    write_tables(tmp_path, 0.0)
    essential = pd.read_csv(tmp_path / "essential_sparsity.csv").assign(
        essential_sparsity=0.0, essential_low=0.0, essential_high=0.0)
    essential.to_csv(tmp_path / "essential_sparsity.csv", index=False)
    turn = claim("sharp_turn", ["essential_sparsity", "drop_vs_sparsity"], method="omp-global",
                 min_ratio=3.0)
    assert verdict(tmp_path, turn)["verdict"] == claims.NOT_REPRODUCED
    essential.assign(essential_high=0.2).to_csv(tmp_path / "essential_sparsity.csv", index=False)
    assert verdict(tmp_path, turn)["verdict"] == claims.INCONCLUSIVE


def test_nm_drops_decided_on_their_intervals():
    def nm(drop: float, half_width: float) -> dict:
        table = pd.DataFrame([{"pattern": "2:4", "task": "t", "sparsity": 0.5, "drop": drop,
                               "drop_low": drop - half_width, "drop_high": drop + half_width}])
        return claims.nm_within_epsilon({"nm_patterns": table, "essential_sparsity":
                                         pd.DataFrame([{"epsilon": 1.0}])}, 0.5)

    assert nm(0.2, 0.5)["verdict"] == claims.REPRODUCED
    assert nm(0.8, 0.5)["verdict"] == claims.INCONCLUSIVE
    assert nm(3.0, 0.5)["verdict"] == claims.NOT_REPRODUCED
    assert "2:4 t 0.8 [0.3, 1.3]" in nm(0.8, 0.5)["ours"]


def test_a_claim_without_its_tables_is_not_run(tmp_path):
    item = {**claim("mask_cosine", ["mask_similarity"], threshold=0.96, max_sparsity=0.4)}
    result = verdict(tmp_path, item)
    assert result["verdict"] == claims.NOT_RUN and "mask_similarity.csv" in result["detail"]
    no_check = {k: v for k, v in item.items() if k not in ("check", "args")}
    assert verdict(tmp_path, no_check)["verdict"] == claims.NOT_RUN


@pytest.mark.parametrize(("change", "message"), [
    ({"threshold": 0.9}, "unknown keys ['threshold']"),
    ({"check": "vibes"}, "check 'vibes' is unknown"),
])
def test_a_bad_claim_is_one_clear_error(tmp_path, change, message):
    item = {**claim("mask_cosine", ["mask_similarity"]), **change}
    with pytest.raises(ParamsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        claims.evaluate_claims([item], tmp_path)


def test_the_shipped_claims_are_valid_and_name_the_paper_figures():
    listed = yaml.safe_load((ROOT / "workflow" / "claims.yaml").read_text())
    claims.validate(listed)
    assert len({c["id"] for c in listed}) == len(listed)
    assert {c["figure"] for c in listed} >= {2, 4, 5, 6, 7, 8, 9, 10}


def llm_table(drops: dict[float, float], sparsegpt_ppl: float, omp_ppl: float,
              margin: float = 0.0) -> pd.DataFrame:
    """Each drop's interval is the drop +/- `margin` points."""
    rows = [{"model": "m", "method": "omp-global", "sparsity": 0.0, "pattern": "",
             "accuracy": 60.0, "accuracy_drop": 0.0, "accuracy_drop_low": 0.0,
             "accuracy_drop_high": 0.0, "perplexity": 20.0, "questions": 400}]
    for sparsity, drop in drops.items():
        rows.append({**rows[0], "sparsity": sparsity, "accuracy": 60.0 - drop,
                     "accuracy_drop": drop, "accuracy_drop_low": drop - margin,
                     "accuracy_drop_high": drop + margin, "perplexity": omp_ppl})
        rows.append({**rows[0], "method": "sparsegpt", "sparsity": sparsity,
                     "perplexity": sparsegpt_ppl})
    rows.append({**rows[0], "method": "sparsegpt", "sparsity": 0.5, "pattern": "2:4",
                 "perplexity": 1e6})  # N:M runs are not part of the unstructured curve
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("drops", "margin", "expected"), [
    ({0.1: 0.0, 0.2: 0.5, 0.3: 5.0}, 0.2, claims.REPRODUCED),
    ({0.1: 0.0, 0.2: 3.0, 0.3: 5.0}, 0.2, claims.NOT_REPRODUCED),
    # drops +/- 4 points: 0.2 may or may not be free
    ({0.1: 0.0, 0.2: 0.5, 0.3: 5.0}, 4.0, claims.INCONCLUSIVE)])
def test_llm_free_sparsity_is_the_essential_sparsity_of_the_zero_shot_curve(drops, margin,
                                                                            expected):
    result = claims.llm_free_sparsity({"llm_zero_shot": llm_table(drops, 30.0, 90.0, margin)},
                                      method="omp-global", epsilon=1.0, min_sparsity=0.2)
    assert result["verdict"] == expected
    if margin == 4.0:
        assert "m 0.2 [0, 0.3]" in result["ours"]
        assert "dense accuracy 60.0 on 400 questions" in result["ours"]


@pytest.mark.parametrize(("sparsegpt", "omp", "expected"),
                         [(30.0, 90.0, claims.REPRODUCED), (95.0, 90.0, claims.NOT_REPRODUCED)])
def test_llm_better_at_highest_compares_perplexity_at_the_top_sparsity(sparsegpt, omp, expected):
    table = llm_table({0.1: 0.0, 0.3: 0.0}, sparsegpt, omp)
    result = claims.llm_better_at_highest({"llm_zero_shot": table}, "sparsegpt", "omp-global")
    assert result["verdict"] == expected and "at 0.3" in result["ours"]
