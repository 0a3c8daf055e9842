"""What a continuous-optimisation run shows: the per-week table (``adapt.md``), the recovery of the
week-0 lift, and ``adaptation.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from simulators.core.plots import save_png


def recovery(weeks: list[dict[str, Any]]) -> dict[str, Any]:
    """The week-0 lift over the static re-ranker, and each week's lift of both policies as its share."""

    def lift(week: dict[str, Any], name: str) -> float | None:
        ab = week["ab"]
        return ab[name]["engagement"] - ab["static"]["engagement"] if name in ab else None

    before = lift(weeks[0], "frozen")
    shares = []
    for week in weeks[1:]:
        frozen, adapted = lift(week, "frozen"), lift(week, "adapted")
        shares.append({
            "week": week["week"], "frozen_lift": frozen, "adapted_lift": adapted,
            "frozen_share": frozen / before if before and frozen is not None else None,
            "adapted_share": adapted / before if before and adapted is not None else None,
        })  # fmt: skip
    return {"pre_drift_lift": before, "by_week": shares}


def row(week: dict[str, Any]) -> str:
    ab = week["ab"]

    def cell(name: str) -> str:
        if name not in ab:
            return ""
        e = ab[name]
        return f"{e['engagement']:.2f} [{e['ci95'][0]:.2f}, {e['ci95'][1]:.2f}]"

    diff = ab.get("adapted_minus_frozen")
    paired = f"{diff['mean']:+.2f} [{diff['ci95'][0]:+.2f}, {diff['ci95'][1]:+.2f}]" if diff else ""
    return f"| {week['week']} | {week['day']:.1f} | {cell('frozen')} | {cell('adapted')} | {cell('static')} | {paired} |"


def markdown(weeks: list[dict[str, Any]], recovered: dict[str, Any]) -> str:
    """The per-week table."""
    lines = [
        "| week | day | frozen | adapted | best static (tuned-weights) | adapted - frozen (paired) |",
        "| --- | --- | --- | --- | --- | --- |",
        *[row(week) for week in weeks],
        "",
        f"Engagement per session in the true shop (95% CIs). Week 0's lift of the policy over the best static "
        f"re-ranker: {recovered['pre_drift_lift']:+.2f}.",
    ]
    return "\n".join(lines) + "\n"


def plot(weeks: list[dict[str, Any]], path: Path) -> None:
    """Left: engagement per week of the frozen, adapted and static policies with their CIs;
    right: the paired difference adapted - frozen with its CI (what the A/B decides on)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (levels, paired) = plt.subplots(1, 2, figsize=(10.0, 3.8))
    for name, colour in (("frozen", "tab:blue"), ("adapted", "tab:orange"), ("static", "tab:grey")):
        rows = [(w["week"], w["ab"][name]) for w in weeks if name in w["ab"]]
        if not rows:
            continue
        x = np.array([r[0] for r in rows])
        levels.plot(x, [r[1]["engagement"] for r in rows], marker="o", color=colour, label=name)
        levels.fill_between(
            x, [r[1]["ci95"][0] for r in rows], [r[1]["ci95"][1] for r in rows], color=colour, alpha=0.15
        )
    levels.set_xlabel("simulated week after the logs")
    levels.set_ylabel("engagement per session (true shop)")
    levels.legend(frameon=False)
    diffs = [(w["week"], w["ab"]["adapted_minus_frozen"]) for w in weeks if "adapted_minus_frozen" in w["ab"]]
    if diffs:
        x = np.array([d[0] for d in diffs])
        mean = np.array([d[1]["mean"] for d in diffs])
        low, high = np.array([d[1]["ci95"][0] for d in diffs]), np.array([d[1]["ci95"][1] for d in diffs])
        paired.errorbar(x, mean, yerr=[mean - low, high - mean], marker="o", color="tab:orange", capsize=4)
    paired.axhline(0.0, color="black", linewidth=0.8)
    for axis in (levels, paired):
        axis.set_xticks([w["week"] for w in weeks])
    paired.set_xlabel("simulated week after the logs")
    paired.set_ylabel("adapted - frozen (paired, 95% CI)")
    figure.tight_layout()
    save_png(figure, path, dpi=120)


def pooled_markdown(pooled: dict[str, Any]) -> str:
    """The per-week table of the pooled seeds."""
    head = markdown(pooled["weeks"], pooled["recovery"])
    return head.replace("(95% CIs)", f"(mean of {pooled['seeds']} seeds, Student-t 95% CIs across seeds)")
