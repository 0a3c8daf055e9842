"""How fast tastes move in real logs: the measurements behind the shop's :class:`ShopDrift`.

``python -m benchmarks.drift --json FILE``

On MovieLens-100K (31 weeks of ratings), each genre's weekly share of likes (rating >= 4; a
movie's genre is its first listed one, the loader's ``provider``) is fitted on the log scale as
``log share_g(w) = a_g + b_g w + A_g cos(2 pi w / 52.18) + B_g sin(2 pi w / 52.18)``: a linear
trend plus a yearly season, jointly (31 weeks hold 0.6 of a year, so the two are partly
confounded; the linear-only fit's slopes are reported beside them). Genres with at least 500
likes enter. Reported: the spread (sd across genres) of the weekly slopes ``b_g``, the root
mean square of the season's amplitude ``sqrt(A_g^2 + B_g^2)``, the week-to-week residual sd in
excess of the binomial sampling noise, and the share of the catalog first rated in each week
after the first (new items, a proxy for launches).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.tables import report_markdown
from simulators.core.cli import ArgumentParser, cli_entry
from simulators.core.storage import check_output_file, input_files, write_text_atomic
from simulators.datasets import load_logs

WEEKS_PER_YEAR = 365.25 / 7
MIN_LIKES = 500
"""Genres with fewer likes over the whole period are left out (their weekly shares are noise)."""


def measure(data: str = "movielens") -> dict[str, Any]:
    """The drift figures of the module docstring on ``data``."""
    logs = load_logs(data)
    table = logs.interactions
    genre = logs.items.set_index("item_id").loc[table["item_id"], "provider"].to_numpy()
    week = ((table["timestamp"] - table["timestamp"].min()) // (7 * 86_400)).astype(int).to_numpy()
    liked = table["click"].to_numpy() == 1
    genres, g = np.unique(genre[liked], return_inverse=True)
    n_weeks = int(week.max()) + 1
    counts = np.zeros((n_weeks, len(genres)))
    np.add.at(counts, (week[liked], g), 1.0)
    keep = counts.sum(axis=0) >= MIN_LIKES
    smoothed = counts[:, keep] + 0.5
    log_share = np.log(smoothed / smoothed.sum(axis=1, keepdims=True))
    w = np.arange(n_weeks, dtype=np.float64)
    angle = 2 * np.pi * w / WEEKS_PER_YEAR
    design = np.column_stack([np.ones(n_weeks), w, np.cos(angle), np.sin(angle)])
    joint, *_ = np.linalg.lstsq(design, log_share, rcond=None)
    linear, *_ = np.linalg.lstsq(design[:, :2], log_share, rcond=None)
    noise = float((1.0 / smoothed).mean())  # the delta method's variance of a log count
    residual = log_share - design @ joint
    amplitude = np.hypot(joint[2], joint[3])
    first_week = np.bincount(
        table.groupby("item_id")["timestamp"]
        .min()
        .sub(table["timestamp"].min())
        .floordiv(7 * 86_400)
        .astype(int),
        minlength=n_weeks,
    )
    return {
        "data": logs.source,
        "weeks": n_weeks,
        "genres": [str(x) for x in genres[keep]],
        "trend_sd_per_week": float(joint[1].std()),
        "trend_sd_per_week_linear_only": float(linear[1].std()),
        "season_amplitude_rms": float(np.sqrt((amplitude**2).mean())),
        "excess_weekly_sd": float(np.sqrt(max(residual.var(axis=0).mean() - noise, 0.0))),
        "new_items_share_per_week": float(first_week[1:].mean() / logs.n_items),
        "items_first_rated_per_week": first_week.tolist(),
    }


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Measure and write the JSON."""
    parser = ArgumentParser(prog="python -m benchmarks.drift", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write the figures (JSON)")
    parser.add_argument(
        "--data", default="movielens", help="logs with timestamps over weeks (default: movielens)"
    )
    args = parser.parse_args(argv)
    check_output_file(args.json, "--json", inputs=input_files(args.data), beside=(".md", ".png"))
    report = measure(args.data)
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    write_text_atomic(
        args.json.with_suffix(".md"),
        report_markdown("How fast tastes move in MovieLens-100K (benchmarks.drift)", report),
    )
    shown = {k: v for k, v in report.items() if k not in ("items_first_rated_per_week", "genres")}
    print(json.dumps(shown, indent=2))


if __name__ == "__main__":
    main()
