"""The figures' shared drawing: every band is its table's interval, every star an essential
sparsity with its interval as whisker, in one convention (sparsity in percent, drop upward)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection

from essential_sparsity.records import theme


def test_drop_curves_draw_each_interval_as_a_band_and_the_essential_sparsity_as_a_star():
    drops = pd.DataFrame({"model": "m", "task": "t", "method": "omp-global",
                          "sparsity": [0.0, 0.2, 0.4], "drop": [0.0, 0.5, 3.0],
                          "drop_low": [0.0, -0.5, 2.0], "drop_high": [0.0, 1.5, 4.0]})
    essential = pd.DataFrame([{"model": "m", "task": "t", "method": "omp-global",
                               "essential_sparsity": 0.2, "essential_low": 0.0,
                               "essential_high": 0.4}])
    theme.use()
    fig, ax = plt.subplots()
    theme.drop_curves(ax, drops, essential, "task", epsilon=1.0)
    band = ax.collections[0].get_paths()[0].vertices
    assert {tuple(v) for v in band} >= {(20.0, -0.5), (20.0, 1.5), (40.0, 2.0), (40.0, 4.0)}
    star = [line for line in ax.lines if line.get_marker() == "*"]
    assert [tuple(xy) for xy in star[0].get_xydata()] == [(20.0, 0.5)]
    whisker = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert np.allclose(whisker[-1].get_segments()[0], [[0.0, 0.5], [40.0, 0.5]])
    assert ax.get_xlabel() == theme.SPARSITY and ax.get_ylabel() == theme.DROP
    plt.close(fig)
