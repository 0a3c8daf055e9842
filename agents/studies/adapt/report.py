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


ARMS = ("frozen", "adapted", "deployed", "static")
"""The policies of the table and the plot: week 0's, this week's fine-tuned candidate, the one the
guard deploys next week, the best static re-ranker."""
DIFFERENCES = ("adapted_minus_frozen", "deployed_minus_frozen")
"""The paired differences of the table and the plot."""


def guard_cell(week: dict[str, Any]) -> str:
    """What the guard decided: ``ship NAME`` or ``keep``, after how many canary sessions, with the
    lower bound it decided on; for pooled seeds, how many shipped."""
    guard = week.get("guard")
    if guard is None:
        return ""
    if "ship_share" in guard:
        shipped = [s for s in guard["shipped"] if s]
        names = ", ".join(f"{n} x{shipped.count(n)}" for n in sorted(set(shipped)))
        return f"shipped in {len(shipped)} of {len(guard['shipped'])}" + (f" ({names})" if names else "")
    if guard.get("guard") == "none":
        return "ship adapted (unguarded)"
    bound = guard.get("bound")
    shown = f", bound {bound:+.2f}" if bound is not None else ""
    return (
        f"{'ship ' + guard['shipped'] if guard['shipped'] else 'keep'} ({guard['sessions']} sessions{shown})"
    )


def guard_mark(guard: dict[str, Any]) -> str:
    """The guard's decision in a few characters (the plot's label of a week)."""
    if "ship_share" in guard:
        return f"shipped {sum(1 for s in guard['shipped'] if s)}/{len(guard['shipped'])}"
    return f"ship {guard['shipped']}" if guard["decision"] == "ship" else "kept"


def row(week: dict[str, Any]) -> str:
    ab = week["ab"]

    def cell(name: str) -> str:
        if name not in ab:
            return ""
        e = ab[name]
        return f"{e['engagement']:.2f} [{e['ci95'][0]:.2f}, {e['ci95'][1]:.2f}]"

    def paired(name: str) -> str:
        diff = ab.get(name)
        return f"{diff['mean']:+.2f} [{diff['ci95'][0]:+.2f}, {diff['ci95'][1]:+.2f}]" if diff else ""

    cells = [
        str(week["week"]),
        f"{week['day']:.1f}",
        *map(cell, ARMS),
        *map(paired, DIFFERENCES),
        guard_cell(week),
    ]
    return "| " + " | ".join(cells) + " |"


def markdown(weeks: list[dict[str, Any]], recovered: dict[str, Any]) -> str:
    """The per-week table."""
    lines = [
        "| week | day | frozen | adapted | deployed | best static (tuned-weights) | adapted - frozen (paired) "
        "| deployed - frozen (paired) | guard |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *[row(week) for week in weeks],
        "",
        "Engagement per session in the true shop (95% CIs). `adapted`: the week's fine-tuned candidate; "
        "`deployed`: what the guard serves the next week (the candidate it shipped, or the policy it kept). "
        f"Week 0's lift of the policy over the best static re-ranker: {recovered['pre_drift_lift']:+.2f}.",
    ]
    planted = sorted({name for week in weeks for name in week["ab"] if name.startswith("planted-")})
    for name in planted:
        values = [f"week {w['week']}: {w['ab'][name]['engagement']:.2f}" for w in weeks if name in w["ab"]]
        lines.append(f"`{name}` (a planted candidate) in the same A/B: {'; '.join(values)}.")
    return "\n".join(lines) + "\n"


def plot(weeks: list[dict[str, Any]], path: Path) -> None:
    """Left: engagement per week of the frozen, adapted, deployed and static policies with their
    CIs; right: the paired differences adapted - frozen and deployed - frozen with their CIs, and
    the guard's decision under each week."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (levels, paired) = plt.subplots(1, 2, figsize=(10.0, 3.8))
    colours = {"frozen": "tab:blue", "adapted": "tab:orange", "deployed": "tab:green", "static": "tab:grey"}
    for name, colour in colours.items():
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
    for offset, name in zip((-0.06, 0.06), DIFFERENCES, strict=True):
        diffs = [(w["week"], w["ab"][name]) for w in weeks if name in w["ab"]]
        if diffs:
            x = np.array([d[0] for d in diffs]) + offset
            mean = np.array([d[1]["mean"] for d in diffs])
            low, high = np.array([d[1]["ci95"][0] for d in diffs]), np.array([d[1]["ci95"][1] for d in diffs])
            colour = colours[name.split("_")[0]]
            paired.errorbar(
                x,
                mean,
                yerr=[mean - low, high - mean],
                marker="o",
                color=colour,
                capsize=4,
                label=name.split("_")[0],
            )
    paired.axhline(0.0, color="black", linewidth=0.8)
    for week in weeks:  # the guard's decision under each week's points
        if week.get("guard"):
            paired.annotate(
                guard_mark(week["guard"]), (week["week"], 0.03), xycoords=("data", "axes fraction"),
                ha="center", fontsize=8, color="tab:green",
            )  # fmt: skip
    for axis in (levels, paired):
        axis.set_xticks([w["week"] for w in weeks])
    paired.set_xlabel("simulated week after the logs")
    paired.set_ylabel("policy - frozen (paired, 95% CI)")
    paired.legend(frameon=False)
    figure.tight_layout()
    save_png(figure, path, dpi=120)


def pooled_markdown(pooled: dict[str, Any]) -> str:
    """The per-week table of the pooled seeds, and the guard's record over all of them."""
    head = markdown(pooled["weeks"], pooled["recovery"])
    head = head.replace("(95% CIs)", f"(mean of {pooled['seeds']} seeds, Student-t 95% CIs across seeds)")
    guard = pooled.get("guard")
    if not guard or not guard["decisions"]:
        return head
    ships = guard["ships"]
    shipped = ", ".join(
        f"seed {s['seed']} week {s['week']}: {s['shipped']}"
        + (f" ({s['ab_gain']['mean']:+.2f} [{s['ab_gain']['ci95'][0]:+.2f}, {s['ab_gain']['ci95'][1]:+.2f}])"
           if s["ab_gain"]["mean"] is not None else "")
        for s in ships
    )  # fmt: skip
    worse = guard["weeks_deployed_worse_than_frozen"]
    alpha = f" at alpha {guard['alpha']}" if guard["alpha"] is not None else ""
    return head + (
        f"\nThe guard{alpha}: {guard['decisions']} decisions (seeds x weeks), {len(ships)} ships"
        + (f" ({shipped}: the shipped policy - the one it replaced, in the same week's A/B)" if ships else "")
        + f". Ships the A/B does not find better: {guard['ships_not_better_in_ab']}; finds worse (CI below 0): "
        f"{guard['ships_worse_in_ab']}. Seed-weeks whose deployed policy the A/B finds worse than the frozen one "
        f"(CI below 0): {len(worse)}.\n"
    )
