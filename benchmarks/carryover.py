"""Does boredom carry from one session to the next? What a user's last session leaves on the next.

``python -m benchmarks.carryover --json FILE [--data movielens]``

Every session of RecGym's worlds starts fresh: a topic's boredom and drift build up within a
session and are gone at the next visit. Whether that holds is measured here on logs with
sessions over time (MovieLens-100K by default, whose sessions are the loader's: ratings less than
an hour apart; ``--data shop:returns`` runs the same on a shop whose truth carries nothing, the
check that the measurement finds nothing there).

Each logged row (an item shown or rated, ``click`` its like) has a topic (the item's category, or
on MovieLens-100K its first genre) and two exposures to it:

- ``earlier_share``: the share of this session's earlier rows in that topic (0 at the first row);
- ``previous_share``: the share of the user's previous session's rows in that topic, measured on
  the first ``first_rows`` rows of each session that has one (its start, where anything carried
  is strongest).

The like is a linear probability model in both, the ``previous_share`` term split by the gap
between the two sessions (:data:`GAP_BINS`), within each user's topic (every variable less its
mean over the user's rows in that topic, so that a user's lasting taste for a topic is no effect of
exposure), with two controls: the row's log position, and each gap bin's level over the rows
measured (sessions after short and after long gaps differ in like rate, and so do a session's
first rows from the rest; without the levels the share's column reads those differences as an
effect: on the shop, where nothing carries, -0.04 to -0.05 at every gap). ``within`` is the effect
of a session's own exposure (negative where a topic tires within a session, measured on every
row); each gap's ``carry`` is the previous session's effect over ``within``, the share of a
session's effect still there at the next visit: 0 where each session starts fresh, 1 where the next
visit starts where the last one ended. ``fading`` is the previous session's effect at the shortest
gap less at the longest (negative where what a session leaves wears off with time). The 95%
intervals come from a bootstrap over users (each user's rows resampled whole).

Writes the JSON, its tables (``.md``) and the carry per gap with its interval (``.png``).
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.returns import log_topics
from benchmarks.tables import report_markdown
from simulators.core.cli import ArgumentParser, cli_entry
from simulators.core.errors import DataError
from simulators.core.plots import save_png
from simulators.core.storage import check_output_file, input_files, write_text_atomic
from simulators.datasets import load_logs
from simulators.retention import SECONDS_PER_DAY

GAP_BINS = (0.0, 1.0, 7.0, 30.0, np.inf)
"""Edges in days of the gaps between a session and the one before it (a day, a week, a month)."""
FIRST_ROWS = 10
"""Rows of each session measured: its start, where anything carried is strongest."""


def gap_labels(edges: tuple[float, ...] = GAP_BINS) -> list[str]:
    """``"<1d"``, ``"1-7d"``, ... ``">30d"``: one label per gap bin."""
    inner = [f"{a:g}-{b:g}d" for a, b in pairwise(edges[1:-1])]
    return [f"<{edges[1]:g}d", *inner, f">{edges[-2]:g}d"]


def exposure_rows(interactions: pd.DataFrame, topic: pd.Series) -> pd.DataFrame:
    """One row per interaction (of the module docstring): ``user_id``, ``topic``, ``click``,
    ``position`` (0-based, within the session), ``earlier_share``, ``previous_share`` (0 in a
    user's first session) and ``gap`` (days from the previous session's end to this one's start;
    NaN in a user's first session). ``interactions`` need ``user_id``, ``item_id``,
    ``session_id``, ``timestamp`` (seconds) and ``click``; ``topic`` maps ``item_id`` to a topic;
    rows are ordered by time, then ``position`` where the logs have it."""
    needed = {"user_id", "item_id", "session_id", "timestamp", "click"}
    if missing := needed - set(interactions.columns):
        raise DataError(f"carry-over needs the interactions' {sorted(missing)} columns")
    order = ["user_id", "timestamp", *(["position"] if "position" in interactions.columns else [])]
    table = interactions.sort_values(order, kind="stable").reset_index(drop=True)
    table = table.assign(topic=table["item_id"].map(topic).astype(str))
    sessions = table.groupby("session_id", sort=False).agg(
        user_id=("user_id", "first"), start=("timestamp", "min"), end=("timestamp", "max")
    )
    sessions = sessions.sort_values(["user_id", "start"], kind="stable")
    sessions["previous"] = sessions.index.to_series().groupby(sessions["user_id"]).shift(1)
    sessions["gap"] = (sessions["start"] - sessions.groupby("user_id")["end"].shift(1)) / SECONDS_PER_DAY
    grouped = table.groupby("session_id", sort=False)
    table["position"] = grouped.cumcount()
    earlier_same = table.groupby(["session_id", "topic"], sort=False).cumcount()
    table["earlier_share"] = np.where(
        table["position"] > 0, earlier_same / table["position"].clip(lower=1), 0.0
    )
    counts = table.groupby(["session_id", "topic"]).size()
    shares = counts / grouped.size().reindex(counts.index.get_level_values(0)).to_numpy()
    rows = table.join(sessions[["previous", "gap"]], on="session_id")
    key = pd.MultiIndex.from_arrays([rows["previous"].to_numpy(), rows["topic"].to_numpy()])
    rows["previous_share"] = shares.reindex(key).fillna(0.0).to_numpy()
    columns = ["user_id", "topic", "click", "position", "earlier_share", "previous_share", "gap"]
    return rows[columns].reset_index(drop=True)


def design(
    rows: pd.DataFrame, first_rows: int = FIRST_ROWS, edges: tuple[float, ...] = GAP_BINS
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(X, y, names)`` of the linear probability model, each column less its mean over the
    row's user and topic: ``within`` (the earlier share), one previous-share column per gap bin
    (named by the bin; 0 beyond a session's first ``first_rows`` rows), then the controls:
    ``position`` (log1p) and each bin's level (``"level "`` and the bin: 1 on its rows measured)."""
    labels = gap_labels(edges)
    bins = pd.cut(rows["gap"], list(edges), right=False, labels=labels)
    measured = {label: ((bins == label) & (rows["position"] < first_rows)).astype(float) for label in labels}
    columns = {"within": rows["earlier_share"]}
    columns |= {label: rows["previous_share"] * measured[label] for label in labels}
    columns |= {"position": np.log1p(rows["position"])}
    columns |= {f"level {label}": measured[label] for label in labels}
    frame = pd.DataFrame(columns).assign(click=rows["click"].astype(float))
    groups = rows.groupby(["user_id", "topic"], sort=False).ngroup()
    demeaned = frame - frame.groupby(groups).transform("mean")
    names = list(columns)
    return demeaned[names].to_numpy(float), demeaned["click"].to_numpy(float), names


def user_blocks(x: np.ndarray, y: np.ndarray, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each user's ``X'X`` ``(U, k, k)`` and ``X'y`` ``(U, k)``: the model's sufficient statistics."""
    _, index = np.unique(users, return_inverse=True)
    n_users, k = int(index.max()) + 1, x.shape[1]
    xtx = np.zeros((n_users, k, k))
    np.add.at(xtx, index, x[:, :, None] * x[:, None, :])
    xty = np.zeros((n_users, k))
    np.add.at(xty, index, x * y[:, None])
    return xtx, xty


def effects(
    rows: pd.DataFrame,
    rng: np.random.Generator,
    n_boot: int = 200,
    first_rows: int = FIRST_ROWS,
    edges: tuple[float, ...] = GAP_BINS,
) -> dict[str, Any]:
    """``within``, and per gap bin the previous session's effect and ``carry`` (of the module
    docstring), each with its 95% bootstrap interval over users, and the rows measured and their
    median gap (a bin without rows gets no estimates); then ``fading``."""
    x, y, names = design(rows, first_rows, edges)
    present = np.flatnonzero(np.abs(x).sum(0) > 0)
    xtx, xty = user_blocks(x[:, present], y, rows["user_id"].to_numpy())
    point, draws = np.full(len(names), np.nan), np.full((n_boot, len(names)), np.nan)
    point[present] = np.linalg.solve(xtx.sum(0), xty.sum(0))
    n_users = len(xtx)
    for b in range(n_boot):
        weight = np.bincount(rng.integers(0, n_users, n_users), minlength=n_users).astype(float)
        draws[b, present] = np.linalg.solve(np.einsum("u,ujk->jk", weight, xtx), weight @ xty)

    def summary(estimate: float, sample: np.ndarray) -> dict[str, Any] | None:
        if not np.isfinite(estimate):
            return None
        low, high = np.percentile(sample, [2.5, 97.5])
        return {"estimate": float(estimate), "ci95": [float(low), float(high)]}

    labels = gap_labels(edges)
    measured = rows[rows["position"] < first_rows]
    bins = pd.cut(measured["gap"], list(edges), right=False, labels=labels)
    report: dict[str, Any] = {"within": summary(point[0], draws[:, 0]), "gaps": {}}
    for j, label in enumerate(labels, start=1):
        inside = measured["gap"][bins == label]
        report["gaps"][label] = {
            "rows": len(inside),
            "median_gap_days": float(inside.median()) if len(inside) else None,
            "previous_effect": summary(point[j], draws[:, j]),
            "carry": summary(point[j] / point[0], draws[:, j] / draws[:, 0]),
        }
    both = 1 + np.flatnonzero(np.isfinite(point[1 : 1 + len(labels)]))
    first, last = both[0], both[-1]
    report["fading"] = summary(point[first] - point[last], draws[:, first] - draws[:, last])
    report["fading_between"] = [names[first], names[last]]
    return report


def measure(
    data: str = "movielens", first_rows: int = FIRST_ROWS, n_boot: int = 200, seed: int = 0
) -> dict[str, Any]:
    """The figures of the module docstring on ``data``."""
    logs = load_logs(data)
    topic = log_topics(logs)
    if topic is None:
        raise DataError(f"{data}: the items carry no category or provider, so they have no topics")
    rows = exposure_rows(logs.interactions, topic)
    if rows["gap"].isna().all():
        raise DataError(f"{data}: no user has two sessions, so nothing can carry from one to the next")
    report: dict[str, Any] = {
        "data": data,
        "first_rows": first_rows,
        "bootstrap": n_boot,
        "rows": len(rows),
        "users": int(rows["user_id"].nunique()),
        "like_rate": float(rows["click"].mean()),
    }
    return report | effects(rows, np.random.default_rng(seed), n_boot, first_rows)


def plot(report: dict[str, Any], path: Path) -> None:
    """Each gap's carry with its interval, beside 0 (each session fresh) and 1 (all carries)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [g for g, row in report["gaps"].items() if row["carry"] is not None]
    carry = [report["gaps"][g]["carry"] for g in labels]
    estimate = np.array([c["estimate"] for c in carry])
    low, high = np.array([c["ci95"][0] for c in carry]), np.array([c["ci95"][1] for c in carry])
    figure, axis = plt.subplots(figsize=(6.0, 3.8))
    axis.errorbar(range(len(labels)), estimate, yerr=[estimate - low, high - estimate], fmt="o", capsize=4)
    axis.axhline(0.0, color="grey", lw=0.8, label="each session fresh")
    axis.axhline(1.0, color="tab:red", lw=0.8, ls="--", label="the next visit starts where the last ended")
    axis.set_xticks(range(len(labels)), labels)
    axis.set_xlabel("gap since the previous session")
    axis.set_ylabel("carry (share of a session's effect)")
    axis.set_title(f"What a session leaves on the next ({report['data']})")
    axis.legend(frameon=False, fontsize=8)
    figure.tight_layout()
    save_png(figure, path, dpi=120)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Measure and write the JSON, its tables and the plot."""
    parser = ArgumentParser(prog="python -m benchmarks.carryover", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write the figures (JSON)")
    parser.add_argument(
        "--data", default="movielens", help="logs with sessions over time (default: movielens)"
    )
    parser.add_argument(
        "--first-rows", type=int, default=FIRST_ROWS, help="rows measured per session (its start)"
    )
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples of the users")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    args = parser.parse_args(argv)
    if args.first_rows < 2:
        parser.error(
            f"--first-rows must be at least 2 (a session's own exposure needs an earlier row), got {args.first_rows}"
        )
    if args.bootstrap < 20:
        parser.error(f"--bootstrap must be at least 20, got {args.bootstrap}")
    check_output_file(args.json, "--json", inputs=input_files(args.data), beside=(".md", ".png"))
    report = measure(args.data, args.first_rows, args.bootstrap, args.seed)
    plot(report, args.json.with_suffix(".png"))
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    title = "What a session leaves on the next (benchmarks.carryover)"
    write_text_atomic(args.json.with_suffix(".md"), report_markdown(title, report))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
