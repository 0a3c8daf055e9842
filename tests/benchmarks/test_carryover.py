"""benchmarks.carryover: the exposures are counted as stated, and the model finds a planted carry
(all of a session's effect at short gaps, none at long ones) and no carry where there is none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.carryover import FIRST_ROWS, GAP_BINS, effects, exposure_rows, gap_labels
from simulators.core.errors import DataError
from tests.conftest import run_cli

DAY = 86_400


def test_exposures_are_the_earlier_rows_and_the_previous_sessions_shares() -> None:
    log = pd.DataFrame({
        "user_id": [1, 1, 1, 1, 1, 1, 2],
        "session_id": [10, 10, 10, 11, 11, 11, 20],
        "timestamp": [0, 60, 120, 2 * DAY, 2 * DAY + 60, 2 * DAY + 120, 0],
        "item_id": [5, 6, 5, 5, 7, 5, 5],
        "click": [1, 0, 1, 0, 1, 1, 0],
    })  # fmt: skip
    rows = exposure_rows(log, pd.Series({5: "a", 6: "b", 7: "b"}))
    first = rows[rows["user_id"] == 1].iloc[:3]
    np.testing.assert_allclose(
        first["earlier_share"], [0.0, 0.0, 0.5]
    )  # (a, then b after one a, a after a, b)
    assert first["gap"].isna().all() and (first["previous_share"] == 0).all()  # a first session
    second = rows[rows["user_id"] == 1].iloc[3:]
    np.testing.assert_allclose(second["earlier_share"], [0.0, 0.0, 0.5])
    np.testing.assert_allclose(second["previous_share"], [2 / 3, 1 / 3, 2 / 3])  # the last session's a and b
    np.testing.assert_allclose(second["gap"], (2 * DAY - 120) / DAY)
    assert list(second["position"]) == [0, 1, 2]
    assert gap_labels() == ["<1d", "1-7d", "7-30d", ">30d"]


def planted_log(carry: tuple[float, ...], seed: int = 0, users: int = 1500) -> pd.DataFrame:
    """Users' sessions of 15 rows over 5 topics, a like's chance lowered by 0.2 per unit of the
    session's earlier share of its topic and by 0.2 x ``carry[bin]`` per unit of the previous
    session's share in the first :data:`FIRST_ROWS` rows (bins :data:`GAP_BINS`); those rows of a
    session after a gap under a day are 0.1 less liked whatever was shown (a level the share's
    effect must not take)."""
    rng = np.random.default_rng(seed)
    topics, sessions, length, effect = 5, 6, 15, 0.2
    records = []
    session_id = 0
    for user in range(users):
        taste = rng.uniform(0.35, 0.75, topics)
        clock, previous = 0.0, None
        for _ in range(sessions):
            gap = float(rng.choice([0.3, 3.0, 15.0, 60.0]))
            start = clock + gap
            mix = rng.dirichlet(np.full(topics, 0.7))  # each visit leans on its own topics
            drawn = rng.choice(topics, length, p=mix)
            bin_ = int(np.searchsorted(GAP_BINS, gap, side="right")) - 1
            for position, topic in enumerate(drawn):
                earlier = (drawn[:position] == topic).mean() if position else 0.0
                carried = 0.0
                if previous is not None and position < FIRST_ROWS:
                    carried = carry[bin_] * (previous == topic).mean()
                level = 0.1 if previous is not None and position < FIRST_ROWS and bin_ == 0 else 0.0
                like = rng.random() < taste[topic] - effect * earlier - effect * carried - level
                records.append((user, session_id, (start + position / 1440) * DAY, topic, int(like)))
            previous, clock, session_id = drawn, start + length / 1440, session_id + 1
    return pd.DataFrame(records, columns=["user_id", "session_id", "timestamp", "item_id", "click"])


@pytest.mark.parametrize("carry", [(1.0, 1.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)])
def test_a_planted_carry_is_found_and_none_where_there_is_none(carry: tuple[float, ...]) -> None:
    log = planted_log(carry)
    rows = exposure_rows(log, pd.Series({t: str(t) for t in range(5)}))
    report = effects(rows, np.random.default_rng(1), n_boot=100)
    assert report["within"]["estimate"] == pytest.approx(-0.2, abs=0.03)
    for planted, (label, gap) in zip(carry, report["gaps"].items(), strict=True):
        # each gap's carry has a sampling sd of about 0.06 here: 0.3 is 5 of them, and tells 1 from 0
        assert gap["carry"]["estimate"] == pytest.approx(planted, abs=0.3), (label, gap)
        low, high = gap["carry"]["ci95"]
        assert 0.1 < high - low < 0.6 and low < gap["carry"]["estimate"] < high, (label, gap)


def test_the_cli_measures_movielens_and_refuses_logs_with_one_session_per_user(tmp_path: Path) -> None:
    out = tmp_path / "carry.json"
    ran = run_cli("benchmarks.carryover", "--json", str(out), "--bootstrap", "20")
    if "recbole" in ran.stderr and ran.returncode == 2:
        pytest.skip("needs recbole's ml-100k")
    assert ran.returncode == 0, ran.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["within"]["estimate"] < 0 and set(report["gaps"]) == set(gap_labels())
    assert out.with_suffix(".md").exists() and out.with_suffix(".png").stat().st_size > 0
    folder = tmp_path / "logs"
    folder.mkdir()
    pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2], "timestamp": [0, 5], "click": [1, 0]}).to_csv(
        folder / "interactions.csv", index=False
    )
    pd.DataFrame({"item_id": [1, 2], "text": ["a", "b"], "provider": ["x", "y"]}).to_csv(
        folder / "items.csv", index=False
    )
    refused = run_cli("benchmarks.carryover", "--json", str(tmp_path / "none.json"), "--data", str(folder))
    assert refused.returncode == 2 and "two sessions" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    with pytest.raises(DataError, match="columns"):
        exposure_rows(pd.DataFrame({"user_id": [1]}), pd.Series(dtype=str))
