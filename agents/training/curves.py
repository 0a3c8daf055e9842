"""The learning curve of a training run, on fixed sessions: read from its periodic evaluations
(``eval/evaluations.npz``) and drawn as ``learning_curve.png``: the return at each point beside the
references played on the same sessions, and each point's paired difference to the start and to
the references, with its 95% interval (the same users and session keys, so the sessions' own
spread cancels)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents.training.callbacks import CURVE_FILE
from simulators.core.plots import save_png


@dataclass(frozen=True)
class Curve:
    """A learning curve: per-session returns at each evaluation point, the same sessions at every point."""

    steps: np.ndarray
    """``(P,)`` environment steps of each point (the first: the untrained, warm-started policy)."""
    returns: np.ndarray
    """``(P, E)`` each point's return on each evaluation session, in session order."""

    def same(self, other: Curve) -> bool:
        """Whether ``other`` holds the same points and the same per-session returns (dataclass
        ``==`` cannot compare arrays)."""
        return bool(np.array_equal(self.steps, other.steps) and np.array_equal(self.returns, other.returns))

    @property
    def means(self) -> np.ndarray:
        """``(P,)`` mean return at each point."""
        return self.returns.mean(axis=1) if self.returns.size else np.zeros(len(self.steps))

    def paired(self, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(P,)`` mean and ``(P,)`` 95% half-width of each point's per-session difference to
        ``reference (E,)``, returns on the same sessions."""
        diff = self.returns - reference[None, :]
        n = diff.shape[1]
        half = 1.96 * diff.std(axis=1, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(len(diff))
        return diff.mean(axis=1), half


def read_curve(folder: Path) -> Curve:
    """The learning curve recorded so far in a run folder (empty before any point)."""
    file = folder / "eval" / CURVE_FILE
    if not file.is_file():
        return Curve(np.zeros(0, dtype=np.int64), np.zeros((0, 0)))
    with np.load(file) as data:
        return Curve(data["timesteps"].astype(np.int64), np.asarray(data["results"], dtype=np.float64))


def plot_curve(name: str, curve: Curve, references: dict[str, np.ndarray], path: Path) -> None:
    """Left: the mean return at each point, the references' (static policies played on the same
    sessions) dashed. Right: each point's paired difference to the start and to each reference."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, (levels, paired) = plt.subplots(1, 2, figsize=(11, 4))
    if len(curve.steps):
        levels.plot(curve.steps, curve.means, marker="o", markersize=3, label=name)
        against = {"start": curve.returns[0], **references}
        for (label, returns), colour in zip(
            against.items(), ("tab:blue", "tab:red", "tab:grey", "tab:brown"), strict=False
        ):
            mean, half = curve.paired(returns)
            paired.plot(curve.steps, mean, marker="o", markersize=3, color=colour, label=f"{name} - {label}")
            paired.fill_between(curve.steps, mean - half, mean + half, color=colour, alpha=0.15)
    for (label, returns), colour in zip(
        references.items(), ("tab:red", "tab:grey", "tab:brown"), strict=False
    ):
        levels.axhline(float(np.mean(returns)), color=colour, linestyle="--", label=f"{label} (static)")
    paired.axhline(0.0, color="black", linewidth=0.8)
    sessions = curve.returns.shape[1] if curve.returns.ndim == 2 else 0
    levels.set_title(f"return per session ({sessions} fixed sessions, the same for every line)", fontsize=9)
    paired.set_title("paired difference per session, 95% CI", fontsize=9)
    for axis in (levels, paired):
        axis.set_xlabel("environment steps")
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    levels.set_ylabel("return per session")
    save_png(figure, path)
