"""The comparison table of a trained policy and the static baselines (what ``agents.train``
prints and ``metrics.json`` holds)."""

from __future__ import annotations

from typing import Any

from agents.evaluation.fairness_scale import FairnessScale
from agents.evaluation.paired import paired_cell

METRIC_ROWS = (
    ("return", "return_mean"),
    ("clicks", "clicks_per_session"),
    ("purchases", "purchases_per_session"),
    ("length", "session_length"),
    ("gini", "exposure_gini"),
    ("protected share / target", "protected_exposure_share"),
    ("user gap", "user_group_gap"),
)


def best_static(report: dict[str, Any]) -> str:
    """The name of the baseline with the highest mean return."""
    baselines = report["baselines"]
    return max(baselines, key=lambda name: baselines[name]["return_mean"])


def gain_line(name: str, diff: dict[str, Any], baseline: dict[str, Any]) -> str:
    """``+0.12 [-0.20, +0.44] per session (paired, 500 sessions), +0.4% of its return; paired 95%
    CI includes 0``: a difference in the return's own units (per ``user-month`` in the retention
    env), its relative size only where the baseline's return is positive (a percentage of a
    negative return reads backwards)."""
    lo, hi = diff["ci95"]
    verdict = "above 0" if lo > 0 else "below 0" if hi < 0 else "includes 0"
    base = baseline["return_mean"]
    relative = f", {100 * diff['mean'] / base:+.1f}% of its return" if base > 0 else ""
    unit = episode_unit(baseline)
    return (
        f"{name}: {diff['mean']:+.2f} [{lo:+.2f}, {hi:+.2f}] per {unit} (paired, {diff['n']} {unit}s)"
        f"{relative}; paired 95% CI {verdict}"
    )


def episode_unit(metrics: dict[str, Any]) -> str:
    """What an episode of these metrics is: a ``session``, or in the retention env a ``user-month``."""
    return "user-month" if "retention" in metrics else "session"


SHARE_TOLERANCE = 0.02
"""How far below its target a protected exposure share may fall before the table marks it short."""


def protected_cell(m: dict[str, Any]) -> str:
    """``share / target``, marked ``(short)`` when the share falls below the target by more than
    :data:`SHARE_TOLERANCE`."""
    share, target = m["protected_exposure_share"], m.get("protected_exposure_target", float("nan"))
    short = " (short)" if m.get("provider_groups", True) and share < target - SHARE_TOLERANCE else ""
    return f"{share:.3f} / {target:.3f}{short}"


def comparison_table(report: dict[str, Any]) -> str:
    """Markdown table: the policy (and its warm start) next to every baseline, the return with its
    95% CI and each row's paired difference to the best static baseline on the same sessions; then
    the trained policy against the best static baseline and against the myopic CTR ranking."""
    paired = report.get("paired", {})
    best = paired.get("reference") or best_static(report)
    rows = {"trained policy": ("policy", report["policy"])}
    if "initial_policy" in report:
        rows["warm start (untrained)"] = ("initial_policy", report["initial_policy"])
    for name, m in report["baselines"].items():
        rows[f"{name} (best static)" if name == best else name] = (name, m)
    header = (
        f"| policy | return [95% CI] | vs {best} (paired) | "
        + " | ".join(name for name, _ in METRIC_ROWS[1:])
        + " |"
    )
    lines = [header, "|" + "---|" * (len(METRIC_ROWS) + 2)]
    for label, (key, m) in rows.items():
        lo, hi = m["return_ci95"]
        vs = paired_cell(paired.get(key), reference=key == best)
        cells = [f"{m['return_mean']:.2f} [{lo:.2f}, {hi:.2f}]", vs] + [
            protected_cell(m) if k == "protected_exposure_share" else f"{m[k]:.3f}"
            for _, k in METRIC_ROWS[1:]
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    baselines = report["baselines"]
    if "policy" in paired:
        lines.append(
            gain_line(
                f"trained policy vs the best static baseline ({best})", paired["policy"], baselines[best]
            )
        )
    if "ctr" in baselines and "policy_vs_ctr" in paired:
        lines.append(gain_line("trained policy vs static CTR", paired["policy_vs_ctr"], baselines["ctr"]))
    lines += penalty_lines(report)
    kept = report.get("kept", {}).get("timesteps")
    if not report.get("kept", {}).get("last", True):
        lines.append(
            f"kept: the curve's point at step {kept:,} of {report['timesteps']:,}"
            f"{' (the warm start)' if kept == 0 else ''}"
            f"{' (taken before the final update)' if kept == report['timesteps'] else ''}"
            ": the model at the end of training earned less than the start on the learning "
            f"curve's {report['kept']['curve_sessions']} sessions, so the run keeps the best point there "
            "(best/best_model.zip)"
        )
    duplicates = _coinciding(report)
    if duplicates:
        lines.append(
            "identical rows: "
            + "; ".join(" = ".join(group) for group in duplicates)
            + " (the same slates on every session: a tuned knob landed on another baseline's rule)"
        )
    if not report["policy"].get("provider_groups", True):
        lines.append(
            "no provider groups in these logs: the protected share is 0 by definition (provider fairness off)"
        )
    data = report.get("data", {})
    if data.get("text_encoder", "minilm") != "minilm":
        lines.append(
            f"item encoders: {data['text_encoder']} of the items' {data['item_text']} (BERT not used: no item text)"
        )
    lines += [f"data: {note}" for note in data.get("notes", [])]
    return "\n".join(lines)


PENALTY_DOMINATES = 0.5
"""A fairness penalty costing more than this share of the engagement is said to dominate the reward."""


def penalty_lines(report: dict[str, Any]) -> list[str]:
    """How the fairness weight was set (when priced per world), and each row whose penalty costs
    more than half its engagement per session, with its protected share against the target (the
    penalty then says the ranking is unfair on these logs, not that the weight is off)."""
    lines = []
    if "fairness_scale" in report:
        lines.append(f"fairness: {FairnessScale(**report['fairness_scale']).line()}")
    rows = {"trained policy": report["policy"], **report["baselines"]}
    for name, m in rows.items():
        engagement = m["clicks_per_session"] + m.get("purchase_weight", 1.0) * m["purchases_per_session"]
        cost = engagement - m["return_mean"]
        if engagement <= 0 or cost <= PENALTY_DOMINATES * engagement:
            continue
        share = m.get("protected_exposure_share")
        target = m.get("protected_exposure_target")
        why = (
            f": its slates give the protected group {share:.3f} of the exposure against a target of {target:.3f}"
            if share is not None and target is not None
            else ""
        )
        lines.append(
            f"fairness: the penalty costs {name} {cost:.2f} of its {engagement:.2f} engagement per {episode_unit(m)}{why}"
        )
    return lines


def _coinciding(report: dict[str, Any]) -> list[list[str]]:
    """Groups of baselines whose metrics are identical (the same sessions, the same slates)."""
    keys = (
        "return_mean",
        "clicks_per_session",
        "session_length",
        "exposure_gini",
        "protected_exposure_share",
    )
    groups: dict[tuple[float, ...], list[str]] = {}
    for name, m in report["baselines"].items():
        groups.setdefault(tuple(m[k] for k in keys), []).append(name)
    return [names for names in groups.values() if len(names) > 1]
