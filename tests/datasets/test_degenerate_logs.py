"""Degenerate logs get one clear error: empty tables, no positive feedback, time going backwards
inside a session wherever its rows sit, unparseable timestamps; and row order never matters."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from simulators.core.errors import DataError
from simulators.datasets import load_logs
from tests.conftest import run_cli, tiny_logs

HEADER = "user_id,item_id,timestamp,session_id,position,click\n"


def _folder(tmp_path: Path, rows: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "interactions.csv").write_text(HEADER + rows)
    (tmp_path / "items.csv").write_text("item_id,text,provider\n1,red shoe,a\n2,lamp,b\n")
    return tmp_path


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("", "interactions: the table has no rows"),
        ("1,1,10,7,1,0\n1,2,10,7,2,0\n", "no positive feedback"),
        (
            "1,1,2023-01-01,7,1,1\n1,2,not-a-date,7,2,0\n",
            "'not-a-date' at row 1 is neither seconds nor a date",
        ),
    ],
)
def test_degenerate_tables_are_one_clear_error(tmp_path: Path, rows: str, message: str) -> None:
    folder = _folder(tmp_path, rows)
    if "positive" in message:  # valid logs (a loader reads them), but nothing to fit
        with pytest.raises(DataError, match=message):
            load_logs(folder).require_positive_feedback("fit a simulator from")
    else:
        with pytest.raises(DataError, match=message):
            load_logs(folder)
    result = run_cli("simulators.fit", "--data", str(tmp_path), "--out", str(tmp_path / "fit"))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_interleaved_sessions_load_and_a_row_back_in_time_is_named(tmp_path: Path) -> None:
    rows = [
        "1,2,10,7,1,0\n",
        "2,2,5,8,1,0\n",
        "1,1,10,7,2,1\n",
        "1,1,30,7,1,1\n",
    ]  # sessions 7 and 8 interleave
    interleaved = load_logs(_folder(tmp_path, "".join(rows))).interactions
    assert interleaved["timestamp"].tolist() == [
        10,
        10,
        30,
        5,
    ]  # each session's rows together, by time and slot
    assert interleaved["position"].tolist() == [1, 2, 1, 1]
    back = ["1,1,30,7,1,1\n", "2,2,5,8,1,0\n", "1,2,10,7,1,0\n"]  # session 7's second row is earlier
    sorted_back = load_logs(_folder(tmp_path / "back", "".join(back)))  # sorted, and the row named
    assert sorted_back.interactions["timestamp"].tolist() == [10, 30, 5]
    assert any("row 2 of session 7 (10 s, after 30 s at row 0)" in note for note in sorted_back.notes)
    numeric_text = load_logs(_folder(tmp_path / "text", '1,1,"30",7,1,1\n')).interactions
    assert numeric_text["timestamp"].tolist() == [30.0]  # seconds written as text are seconds


def test_time_going_back_in_a_session_is_caught_wherever_its_rows_sit() -> None:
    logs = tiny_logs()
    table = logs.interactions
    moved = pd.concat([table.iloc[[0, 1]], table.iloc[[4, 5]], table.iloc[[2, 3]]])  # session 7 split by 8
    assert logs.with_interactions(moved).validate()  # still forward in time: fine
    back = moved.copy()
    back.iloc[4:, back.columns.get_loc("timestamp")] = 50  # session 7's later rows before its first ones
    with pytest.raises(DataError, match="goes backwards within a session") as info:
        logs.with_interactions(back).validate()
    assert "'user_id': 1, 'item_id': 12" in str(info.value)  # integer ids shown as integers
