"""Score plots: distributions before and after, by mode and by model (matplotlib).

Input: the before/after scores of the aligned, scored rows per (kind, name), as
:class:`~argalign.stages.report.collect.RunView` and :class:`~argalign.scoring.scoreboard.Scoreboard` hold
them. Output: matplotlib figures, one per kind, one panel per mode or model: the histogram of
the scores before (original rows) and after (aligned rows) with their means. The same figures
go inline into the HTML report (:mod:`argalign.stages.report`), into the Hub folder
(:mod:`argalign.stages.hub_folder`) and into the MLflow run (``mlflow.log_figure``). It imports
nothing of argalign.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import Any

BINS = 20
COLORS = {"before": "#8c8c8c", "after": "#1f77b4"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server or in CI
    import matplotlib.pyplot as plt

    return plt


def score_figures(scores: Mapping[tuple[str, str], tuple[list[float], list[float]]]) -> dict[str, Any]:
    """``{"scores_by_mode.png": Figure, "scores_by_model.png": Figure}`` (kinds with scores)."""
    plt = _pyplot()
    figures = {}
    for kind in ("mode", "model"):
        panels = sorted((name, values) for (k, name), values in scores.items() if k == kind and values[0])
        if not panels:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False,
                                 sharey=True)
        for ax, (name, (before, after)) in zip(axes[0], panels):
            bins = [i / BINS for i in range(BINS + 1)]
            for label, values in (("before", before), ("after", after)):
                mean = sum(values) / len(values)
                ax.hist(values, bins=bins, histtype="stepfilled" if label == "before" else "step",
                        alpha=0.45 if label == "before" else 1.0, linewidth=2,
                        color=COLORS[label], label=f"{label} (mean {mean:.3f})")
                ax.axvline(mean, color=COLORS[label], linestyle="--", linewidth=1)
            ax.set_title(f"{kind} {name} (n={len(before)})", fontsize=10)
            ax.set_xlim(0, 1)
            ax.set_xlabel("mutual predictability")
            ax.legend(fontsize=8, loc="upper left")
        axes[0][0].set_ylabel("aligned rows")
        fig.tight_layout()
        figures[f"scores_by_{kind}.png"] = fig
    return figures


def png_data_uri(figure: Any, dpi: int = 96) -> str:
    """The figure as an inline ``data:image/png;base64,...`` URI (no file, no network)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def close(figures: Mapping[str, Any]) -> None:
    plt = _pyplot()
    for figure in figures.values():
        plt.close(figure)
