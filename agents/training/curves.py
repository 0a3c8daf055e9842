"""The learning curve of a training run: read from its periodic evaluations and drawn as
``learning_curve.png`` beside the static baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agents.training.callbacks import CURVE_FILE
from simulators.core.plots import save_png


def plot_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], baselines: dict[str, dict[str, Any]], path: Path
) -> None:
    """Learning curves (mean evaluation return vs env steps) with the baselines' 95% CI bands."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for name, (steps, values) in curves.items():
        axis.plot(steps, values, marker="o", markersize=3, label=name)
    for (name, m), color in zip(baselines.items(), ("tab:red", "tab:gray", "tab:brown"), strict=False):
        lo, hi = m["return_ci95"]
        axis.axhspan(lo, hi, color=color, alpha=0.15)
        axis.axhline(m["return_mean"], color=color, linestyle="--", label=f"{name} (static)")
    axis.set_xlabel("environment steps")
    axis.set_ylabel("return per session")
    axis.set_title(
        "curves: periodic evaluation users; dashed: static baselines on the final users", fontsize=8
    )
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    save_png(figure, path)


def read_curve(folder: Path) -> tuple[list[int], list[float]]:
    """The learning curve recorded so far (``eval/evaluations.npz``)."""
    file = folder / "eval" / CURVE_FILE
    if not file.is_file():
        return [], []
    data = np.load(file)
    return data["timesteps"].tolist(), data["results"].mean(axis=1).tolist()
