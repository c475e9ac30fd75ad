"""Matplotlib helpers for the applications: PNG files, written atomically.

Figures are drawn on matplotlib's Agg canvas directly (``matplotlib.figure.Figure``),
never through ``pyplot``: no window opens, no global backend is switched, and nothing
is left in pyplot's figure registry. Each PNG is written to a temporary file beside
its destination and renamed into place, so a crash never leaves half an image.
"""
from __future__ import annotations

import io
import math

import numpy as np

from ._io import atomic_write_bytes

__all__ = ["atomic_write", "new_figure", "save_png", "training_curves", "series_plot", "error_histogram"]


def new_figure(width=8.0, height=4.5, dpi=100):
    """A figure on an Agg canvas (no pyplot, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def atomic_write(path, data):
    """Write ``data`` (bytes) to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, data)


def save_png(fig, path):
    """Render ``fig`` to PNG and write it to ``path`` atomically; returns the path."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return atomic_write(path, buffer.getvalue())


def _axis_label(name, unit):
    return f"{name} ({unit})" if unit else name


def training_curves(path, curves, *, unit="", reference=None, title="Training curves",
                    metric="MAE"):
    """One line per model of its validation metric per epoch (solid) and training metric (dashed).

    ``curves``: ``{name: {"train": [...], "val": [...]}}`` in the target's unit;
    ``reference``: ``{label: value}`` drawn as horizontal lines (e.g. persistence's val MAE).
    """
    fig = new_figure()
    ax = fig.add_subplot(1, 1, 1)
    colors = _colors(len(curves))
    for (name, curve), color in zip(curves.items(), colors):
        val = list(curve.get("val") or [])
        train = list(curve.get("train") or [])
        if val:
            ax.plot(range(1, len(val) + 1), val, "-o", color=color, markersize=3, label=f"{name} validation")
        if train:
            ax.plot(range(1, len(train) + 1), train, "--", color=color, alpha=0.6, label=f"{name} training")
    for (label, value), style in zip((reference or {}).items(), (":", "-.", "--")):
        if value is not None and math.isfinite(value):
            ax.axhline(value, color="black", linestyle=style, linewidth=1, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(_axis_label(metric, unit))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if ax.lines:
        ax.legend(fontsize="small", ncol=2 if len(ax.lines) > 6 else 1)
    return save_png(fig, path)


def series_plot(path, times, truth, forecasts, *, unit="", title="Forecast against the truth",
                ylabel="value"):
    """``truth`` and each ``forecasts[name]`` against ``times`` (one shared x axis)."""
    fig = new_figure(10.0, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(times, truth, color="black", linewidth=1.8, label="truth")
    for (name, values), color in zip(forecasts.items(), _colors(len(forecasts))):
        ax.plot(times, values, color=color, linewidth=1.1, label=name)
    ax.set_ylabel(_axis_label(ylabel, unit))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.autofmt_xdate()
    return save_png(fig, path)


def error_histogram(path, errors, *, unit="", bins=50, title="Forecast errors (forecast - truth)"):
    """Overlaid histograms of ``errors[name]`` (arrays), with each one's MAE in the legend."""
    fig = new_figure()
    ax = fig.add_subplot(1, 1, 1)
    finite = [np.asarray(e, dtype=float)[np.isfinite(e)] for e in errors.values()]
    values = np.concatenate(finite) if finite else np.zeros(0)
    if values.size:
        edges = np.histogram_bin_edges(values, bins=bins)
        for (name, err), color in zip(zip(errors, finite), _colors(len(errors))):
            mae = float(np.mean(np.abs(err))) if err.size else float("nan")
            ax.hist(err, bins=edges, alpha=0.45, color=color, label=f"{name} (MAE {mae:.2f})")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(_axis_label("error", unit))
    ax.set_ylabel("windows")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if errors:
        ax.legend(fontsize="small")
    return save_png(fig, path)


def _colors(n):
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(max(n, 0))]
