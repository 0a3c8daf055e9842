"""The comparison table of a trained policy and the static baselines (what ``agents.train``
prints and ``metrics.json`` holds)."""

from __future__ import annotations

from typing import Any

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


def _gain(policy: dict[str, Any], baseline: dict[str, Any]) -> str:
    gain = (
        100.0 * (policy["return_mean"] / baseline["return_mean"] - 1.0)
        if baseline["return_mean"]
        else float("nan")
    )
    (lo, hi), (blo, bhi) = policy["return_ci95"], baseline["return_ci95"]
    verdict = "95% CIs apart" if lo > bhi or hi < blo else "95% CIs overlap"
    return f"{gain:+.1f}% mean return ({verdict})"


SHARE_TOLERANCE = 0.02
"""How far below its target a protected exposure share may fall before the table marks it short."""


def protected_cell(m: dict[str, Any]) -> str:
    """``share / target``, marked ``(short)`` when the share falls below the target by more than
    :data:`SHARE_TOLERANCE`."""
    share, target = m["protected_exposure_share"], m.get("protected_exposure_target", float("nan"))
    short = " (short)" if m.get("provider_groups", True) and share < target - SHARE_TOLERANCE else ""
    return f"{share:.3f} / {target:.3f}{short}"


def comparison_table(report: dict[str, Any]) -> str:
    """Markdown table: the policy next to every baseline (mean [95% CI] of the return), then its
    gain over the best static baseline and over the myopic CTR ranking."""
    best = best_static(report)
    rows = {
        "trained policy": report["policy"],
        **{f"{k} (best static)" if k == best else k: v for k, v in report["baselines"].items()},
    }
    header = "| policy | return [95% CI] | " + " | ".join(name for name, _ in METRIC_ROWS[1:]) + " |"
    lines = [header, "|" + "---|" * (len(METRIC_ROWS) + 1)]
    for name, m in rows.items():
        lo, hi = m["return_ci95"]
        cells = [f"{m['return_mean']:.2f} [{lo:.2f}, {hi:.2f}]"] + [
            protected_cell(m) if key == "protected_exposure_share" else f"{m[key]:.3f}"
            for _, key in METRIC_ROWS[1:]
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    policy, baselines = report["policy"], report["baselines"]
    lines.append(f"\ntrained policy vs the best static baseline ({best}): {_gain(policy, baselines[best])}")
    lines.append(f"trained policy vs static CTR: {_gain(policy, baselines['ctr'])}")
    if not policy.get("provider_groups", True):
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
