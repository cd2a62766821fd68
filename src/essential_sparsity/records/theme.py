"""One look and one convention for every figure; each notebook calls `use()` before it draws.

The look: seaborn's paper context, its colour-blind-safe palette, sizes that read at a paper's
column width, and text kept as text in the vector PDFs. The convention: sparsity on the x axis in
percent, and a drop is the dense metric minus the pruned one in points, so higher is worse, in
every figure that shows one; a drop's band is the interval of its table (`drop_low`,
`drop_high`), which each caption names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import seaborn as sns

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COLUMN = 3.4  # inches: one column of a two-column paper
PAGE = 7.0  # inches: the width of both columns
SPARSITY = "sparsity (%)"
DROP = "drop from dense\n(points; higher is worse)"
BAND_ALPHA = 0.2


def use() -> None:
    sns.set_theme(context="paper", style="ticks", palette="colorblind", rc={
        "pdf.fonttype": 42, "axes.spines.top": False, "axes.spines.right": False,
        "legend.frameon": False, "legend.fontsize": 7, "legend.title_fontsize": 7})


def in_percent(frame: pd.DataFrame, column: str = "sparsity") -> pd.DataFrame:
    """`frame` with its sparsity fraction as the x axis every figure uses."""
    return frame.assign(**{SPARSITY: frame[column] * 100})


def palette(values: list) -> dict:
    """A colour per distinct value, in the order given: the same in every panel of a figure."""
    ordered = list(dict.fromkeys(values))
    return dict(zip(ordered, sns.color_palette(n_colors=len(ordered)), strict=True))


def curves(ax: Axes, frame: pd.DataFrame, y: str, hue: str, style: str | None = None,
           band: tuple[str, str] | None = None, colours: dict | None = None) -> dict:
    """Lines of `y` against sparsity (%), one per `hue` (and `style`), each with its interval
    band (the `band` columns, low and high) in the line's colour. Returns the colours used."""
    colours = colours or palette(sorted(frame[hue]))
    data = in_percent(frame).sort_values(SPARSITY)
    marks = {"markers": True, "dashes": True} if style else {"marker": "o"}
    sns.lineplot(data, x=SPARSITY, y=y, hue=hue, style=style, palette=colours, errorbar=None,
                 markersize=4, ax=ax, **marks)
    if band:
        for key, group in data.groupby([hue, style] if style else [hue]):
            ax.fill_between(group[SPARSITY], group[band[0]], group[band[1]],
                            color=colours[key[0]], alpha=BAND_ALPHA, lw=0)
    return colours


def drop_curves(ax: Axes, frame: pd.DataFrame, essential: pd.DataFrame, hue: str,
                epsilon: float, style: str | None = None, colours: dict | None = None) -> dict:
    """A drop table's curves with their interval bands, the tolerance, and a star on each
    curve's essential sparsity whose whisker is its interval (`essential`: the essential
    sparsity table). Returns the colours used."""
    colours = curves(ax, frame, "drop", hue, style, ("drop_low", "drop_high"), colours)
    tolerance(ax, epsilon)
    keys = ["model", "task", "method"]
    marks = essential[[*keys, "essential_sparsity", "essential_low", "essential_high"]].merge(
        frame, left_on=[*keys, "essential_sparsity"], right_on=[*keys, "sparsity"])
    for _, row in marks.iterrows():
        at, low, high = row["essential_sparsity"], row["essential_low"], row["essential_high"]
        ax.errorbar(100 * at, row["drop"], xerr=[[100 * (at - low)], [100 * (high - at)]],
                    marker="*", ms=10, mec="black", color=colours[row[hue]], capsize=2, lw=0.8)
    ax.set(xlabel=SPARSITY, ylabel=DROP)
    return colours


def bars(ax: Axes, frame: pd.DataFrame, x: str, y: str, hue: str, order: list,
         band: tuple[str, str], colours: dict) -> dict[str, list[float]]:
    """seaborn bars of `y` per `x`, one per `hue`, each with the error bar of its interval (the
    `band` columns, low and high). Returns each hue's bar centres, in `order`."""
    hues = sorted(colours)
    sns.barplot(frame, x=x, y=y, hue=hue, order=order, hue_order=hues, palette=colours,
                errorbar=None, ax=ax)
    centres = {value: [bar.get_x() + bar.get_width() / 2 for bar in container]
               for value, container in zip(hues, list(ax.containers), strict=True)}
    for value, xs in centres.items():
        rows = frame[frame[hue] == value].set_index(x).reindex(order)
        ax.errorbar(xs, rows[y], yerr=[rows[y] - rows[band[0]], rows[band[1]] - rows[y]],
                    fmt="none", color="black", capsize=2, lw=0.8)
    return centres


def tolerance(ax: Axes, epsilon: float) -> None:
    """The zero line and the tolerance epsilon on a drop axis."""
    ax.axhline(0, color="0.6", lw=0.8)
    ax.axhline(epsilon, color="black", ls="--", lw=0.8, label=f"epsilon = {epsilon:g} point")


def save(fig: Figure, png: str, pdf: str, dpi: int) -> None:
    """Both files, cropped to what was drawn (a long label is never cut off)."""
    fig.savefig(png, dpi=dpi, bbox_inches="tight")
    fig.savefig(pdf, bbox_inches="tight")
