"""The report page: every figure with its paper number, caption and notebook link, the tables,
and no script or remote resource, so it renders offline."""

from __future__ import annotations

import pandas as pd
import pytest

from essential_sparsity.records import report
from essential_sparsity.records.io import ArtefactError


def make_inputs(root):
    (root / "figures").mkdir()
    (root / "captions").mkdir()
    (root / "figures" / "fig09_lth_vs_omp.png").write_bytes(b"png")
    (root / "captions" / "fig09_lth_vs_omp.rst").write_text("Tickets minus\nOMP <masks>.\n")
    pd.DataFrame([{"model": "m", "task": "t", "method": "omp-global", "essential_sparsity": 0.4,
                   "essential_low": 0.3, "essential_high": 0.5, "dense_value": 90.0,
                   "value_at_essential": 100 * 0.291667, "next_sparsity": 0.5,
                   "drop_at_next": 4.16667}]).to_csv(root / "essential.csv", index=False)
    pd.DataFrame([{"figure": 10, "claim": "c", "paper": "p", "ours": "0.98",
                   "verdict": "reproduced", "detail": "d"}]).to_csv(root / "claims.csv",
                                                                    index=False)
    (root / "params.yaml").write_text("profile: default\n")


def test_page_links_figure_notebook_and_caption_relative_to_itself(tmp_path):
    make_inputs(tmp_path)
    out = tmp_path / "index.html"
    report.write_report(out, [tmp_path / "figures" / "fig09_lth_vs_omp.png"],
                        tmp_path / "notebooks", tmp_path / "captions", tmp_path / "essential.csv",
                        tmp_path / "claims.csv", tmp_path / "params.yaml", "default", 0.9)
    text = out.read_text()
    assert "src='figures/fig09_lth_vs_omp.png'" in text
    assert "href='notebooks/fig09_lth_vs_omp.html'" in text
    assert "the paper's Figure 9" in text and "Tickets minus OMP &lt;masks&gt;." in text
    assert "class=\"reproduced\"" in text and "<script" not in text
    # numbers as a reader wants them: one decimal, the essential sparsity with its interval
    assert "<td>0.4 [0.3, 0.5]</td><td>90.0</td><td>29.2</td><td>0.5</td><td>4.2</td>" in text


def test_a_figure_without_a_caption_is_a_clear_error(tmp_path):
    make_inputs(tmp_path)
    (tmp_path / "captions" / "fig09_lth_vs_omp.rst").unlink()
    with pytest.raises(ArtefactError, match="needs a caption"):
        report.write_report(tmp_path / "index.html", [tmp_path / "figures" /
                                                      "fig09_lth_vs_omp.png"],
                            tmp_path / "notebooks", tmp_path / "captions",
                            tmp_path / "essential.csv", tmp_path / "claims.csv",
                            tmp_path / "params.yaml", "default", 0.9)
    assert not (tmp_path / "index.html").exists()
