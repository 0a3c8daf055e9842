"""Small, dependency-free metrics shared by every layer: AUC, log loss, calibration, KS, Gini.

Bottom layer (beside ``logs``): imports numpy and pandas only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half); ``nan`` if only one class is present."""
    y = np.asarray(labels, dtype=bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(s).rank(method="average").to_numpy()
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(labels: np.ndarray, probabilities: np.ndarray, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.clip(np.asarray(probabilities, dtype=np.float64).ravel(), eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, n_bins: int = 15) -> float:
    """ECE over ``n_bins`` equal-width bins of [0, 1] (Guo et al., ICML 2017):
    the sum over bins of (bin share) * |mean label - mean prediction|."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    if not len(y):
        return float("nan")
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.abs(
        np.bincount(bins, weights=y, minlength=n_bins) - np.bincount(bins, weights=p, minlength=n_bins)
    )
    return float(gap.sum() / len(y)) if count.sum() else float("nan")


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two ECDFs."""
    a = np.sort(np.asarray(a, dtype=np.float64).ravel())
    b = np.sort(np.asarray(b, dtype=np.float64).ravel())
    if not len(a) or not len(b):
        return float("nan")
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = equal, -> 1 = concentrated)."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if not len(x) or x.sum() <= 0:
        return 0.0
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def clustered_standard_error(values: np.ndarray, cluster: np.ndarray) -> float:
    """Standard error of ``values.mean()`` when rows of one ``cluster`` (for example the steps
    of one session) are dependent and clusters independent: the cluster-robust (sandwich)
    ``sqrt(G / (G - 1) * sum_g e_g^2) / n`` with ``e_g`` the sum of cluster ``g``'s deviations
    from the mean. One row per cluster gives the usual ``std(ddof=1) / sqrt(n)``."""
    x = np.asarray(values, dtype=np.float64).ravel()
    groups = np.unique(np.asarray(cluster).ravel(), return_inverse=True)[1]
    if len(groups) != len(x):
        raise ValueError(f"values ({len(x)}) and cluster ({len(groups)}) differ in length")
    deviations = np.bincount(groups, weights=x - x.mean())
    g = len(deviations)
    return float(np.sqrt(g / (g - 1) * np.sum(deviations**2)) / len(x)) if g > 1 else float("nan")


def seed_ci95(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and Student-t 95% interval ``(mean, lo, hi)`` of a few replicates (seeds): with 3 to
    5 values the normal approximation of :func:`mean_ci95` is too narrow."""
    from scipy.stats import t

    x = np.asarray(values, dtype=np.float64).ravel()
    if not len(x):
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if len(x) < 2:  # one replicate says nothing of their spread
        return mean, float("nan"), float("nan")
    half = float(t.ppf(0.975, len(x) - 1)) * float(x.std(ddof=1)) / np.sqrt(len(x))
    return mean, mean - half, mean + half


def mean_ci95(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and normal-approximation 95% interval ``(mean, lo, hi)``."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if not len(x):
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    half = 1.96 * float(x.std(ddof=1)) / np.sqrt(len(x)) if len(x) > 1 else 0.0
    return mean, mean - half, mean + half
