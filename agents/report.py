"""What a training run shows: the comparison table of the trained policy and the static
baselines, and the learning curve (``learning_curve.png``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agents.callbacks import CURVE_FILE
from simulators.core.storage import atomic_path

METRIC_ROWS = (
    ("return", "return_mean"),
    ("clicks", "clicks_per_session"),
    ("purchases", "purchases_per_session"),
    ("length", "session_length"),
    ("gini", "exposure_gini"),
    ("protected", "protected_exposure_share"),
    ("user gap", "user_group_gap"),
)


def comparison_table(report: dict[str, Any]) -> str:
    """Markdown table: the policy next to the baselines (mean [95% CI] of the return)."""
    rows = {
        "trained policy": report["policy"],
        **{f"{k} (static)" if k == "ctr" else k: v for k, v in report["baselines"].items()},
    }
    header = "| policy | return [95% CI] | " + " | ".join(name for name, _ in METRIC_ROWS[1:]) + " |"
    lines = [header, "|" + "---|" * (len(METRIC_ROWS) + 1)]
    for name, m in rows.items():
        lo, hi = m["return_ci95"]
        cells = [f"{m['return_mean']:.2f} [{lo:.2f}, {hi:.2f}]"] + [
            f"{m[key]:.3f}" for _, key in METRIC_ROWS[1:]
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ctr = report["baselines"]["ctr"]["return_mean"]
    gain = 100.0 * (report["policy"]["return_mean"] / ctr - 1.0) if ctr else float("nan")
    lines.append(f"\ntrained policy vs static CTR: {gain:+.1f}% mean return")
    return "\n".join(lines)


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
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)


def read_curve(folder: Path) -> tuple[list[int], list[float]]:
    """The learning curve recorded so far (``eval/evaluations.npz``)."""
    file = folder / "eval" / CURVE_FILE
    if not file.is_file():
        return [], []
    data = np.load(file)
    return data["timesteps"].tolist(), data["results"].mean(axis=1).tolist()
