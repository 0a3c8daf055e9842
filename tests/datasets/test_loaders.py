"""simulators.datasets: every loader on fixtures in its real format, written here, plus the
vendored OBD sample."""

from __future__ import annotations

import gzip
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulators.core.errors import DataError
from simulators.datasets import load_logs, movielens, obd
from simulators.shop.config import ShopConfig

# Three users, four movies; user 1 has two sessions (a 3-hour gap), user 2 rates a movie 4.
RATINGS = [(1, 1, 5, 1000), (1, 2, 3, 1060), (1, 3, 4, 1000 + 3 * 3600), (2, 1, 4, 5000), (3, 4, 1, 7000)]
MOVIES = [(1, "Toy Story (1995)", ["Animation", "Children's", "Comedy"]), (2, "GoldenEye (1995)", ["Action", "Thriller"]),
          (3, "Heat (1995)", ["Crime"]), (4, "Amélie (2001)", ["Comedy", "Romance"])]  # fmt: skip
USERS = [(1, 24, "M", "technician"), (2, 53, "F", "other"), (3, 33, "F", "writer")]


def write_grouplens_100k(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATINGS))
    lines = []
    for item, title, genres in MOVIES:
        flags = ["1" if g in genres else "0" for g in movielens.GENRES_100K]
        lines.append("|".join([str(item), title, "01-Jan-1995", "", "http://x", *flags]))
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    (folder / "u.user").write_text("".join(f"{u}|{a}|{g}|{o}|00000\n" for u, a, g, o in USERS))
    return folder


def write_grouplens_1m(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_text("".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in RATINGS))
    movies = "".join(f"{i}::{t}::{'|'.join(g)}\n" for i, t, g in MOVIES)
    (folder / "movies.dat").write_bytes(movies.encode("latin-1"))
    codes = {24: 18, 53: 50, 33: 25}
    (folder / "users.dat").write_text("".join(f"{u}::{g}::{codes[a]}::{o}::00000\n" for u, a, g, o in USERS))
    return folder


def write_recbole(folder: Path) -> Path:
    folder.mkdir(parents=True)
    inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    inter += "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATINGS)
    (folder / "ml-tiny.inter").write_text(inter)
    item = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    item += "".join(f"{i}\t{t[:-7]}\t{t[-5:-1]}\t{' '.join(g)}\n" for i, t, g in MOVIES)
    (folder / "ml-tiny.item").write_text(item)
    user = "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
    user += "".join(f"{u}\t{a}\t{g}\t{o}\t00000\n" for u, a, g, o in USERS)
    (folder / "ml-tiny.user").write_text(user)
    return folder


@pytest.mark.parametrize("writer", [write_grouplens_100k, write_grouplens_1m, write_recbole])
def test_movielens_formats_agree(tmp_path: Path, writer) -> None:  # type: ignore[no-untyped-def]
    logs = load_logs(writer(tmp_path / "ml"))
    table = logs.interactions
    assert len(table) == len(RATINGS)
    assert table["position"].eq(1).all()
    liked = table.set_index(["user_id", "item_id"])["click"]
    assert liked[(1, 1)] == 1 and liked[(1, 2)] == 0 and liked[(2, 1)] == 1 and liked[(3, 4)] == 0
    assert table.set_index(["user_id", "item_id"])["rating"][(1, 2)] == 3.0
    # A 3-hour gap cuts user 1 into two sessions; users 2 and 3 have one each.
    assert table.groupby("user_id")["session_id"].nunique().to_dict() == {1: 2, 2: 1, 3: 1}
    text = logs.items.set_index("item_id")["text"]
    assert text[1] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    assert "Amélie (2001)" in text[4]
    assert logs.items.set_index("item_id")["provider"][2] == "Action"
    users = logs.users.set_index("user_id")
    assert users.loc[2, "gender"] == "F" and users.loc[1, "age_group"] == "<25"
    assert logs.sensitive_attributes == ("gender", "age_group")


def test_movielens_session_gap_is_an_option(tmp_path: Path) -> None:
    folder = write_grouplens_100k(tmp_path / "ml")
    logs = load_logs("movielens", path=folder, session_gap_s=24 * 3600)
    assert logs.interactions.groupby("user_id")["session_id"].nunique()[1] == 1


def test_movielens_without_data_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(movielens, "installed_recbole_folder", lambda: None)
    with pytest.raises(DataError, match="pip install recbole"):
        load_logs("movielens")


def test_movielens_from_installed_recbole_when_present() -> None:
    if movielens.installed_recbole_folder() is None:
        pytest.skip("recbole is not installed (optional; its wheel carries ml-100k)")
    logs = load_logs("movielens")
    assert len(logs.interactions) == 100_000 and logs.n_items == 1682


@pytest.mark.parametrize(("spec", "clicks"), [("obd:random/all", 38), ("obd:bts/all", 42)])
def test_vendored_obd_sample(spec: str, clicks: int) -> None:
    logs = load_logs(spec)
    table = logs.interactions
    assert len(table) == 10_000
    assert int(table["click"].sum()) == clicks
    assert set(table["position"]) == {1, 2, 3}
    assert table["propensity"].between(0, 1, inclusive="right").all()
    assert logs.n_items == 80
    assert {"user_feature_0", "user-item_affinity_0"} <= set(table.columns)


@pytest.mark.parametrize("policy", obd.POLICIES)
@pytest.mark.parametrize(("campaign", "n_items"), [("all", 80), ("men", 34), ("women", 46)])
def test_every_obd_file_loads(policy: str, campaign: str, n_items: int) -> None:
    logs = load_logs("obd", policy=policy, campaign=campaign)
    assert len(logs.interactions) == 10_000 and logs.n_items == n_items


def test_obd_prior_matches_the_campaign() -> None:
    alpha, beta = obd.prior_bts("all")
    assert alpha.shape == beta.shape == (80,) and (alpha > 0).all() and (beta > 0).all()


def test_obd_full_dataset_path(tmp_path: Path) -> None:
    """The full dataset has the same layout with plain CSV files."""
    root = tmp_path / "open_bandit_dataset"
    for policy in obd.POLICIES:
        for campaign in obd.CAMPAIGNS:
            source = obd.SAMPLE_ROOT / policy / campaign
            target = root / policy / campaign
            target.mkdir(parents=True)
            with gzip.open(source / f"{campaign}.csv.gz", "rt") as handle:
                head = "".join(handle.readline() for _ in range(51))
            (target / f"{campaign}.csv").write_text(head)
            (target / "item_context.csv").write_text((source / "item_context.csv").read_text())
    logs = load_logs("obd:bts/women", path=root)
    assert len(logs.interactions) == 50
    assert len(load_logs(root).interactions) == 50  # recognised as an OBD root


def test_obd_bad_options() -> None:
    with pytest.raises(DataError, match="policy must be one of"):
        load_logs("obd:greedy/all")
    with pytest.raises(DataError, match="campaign must be one of"):
        load_logs("obd", campaign="kids")


def _tabular_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    interactions = pd.DataFrame(
        {
            "uid": ["u1", "u1", "u2"],
            "iid": ["a", "b", "a"],
            "timestamp": ["2024-01-01T10:00:00Z", "2024-01-01T10:05:00Z", "2024-01-02T09:00:00Z"],
            "session_id": [1, 1, 2],
            "position": [1, 2, 1],
            "click": [1, 0, 1],
            "propensity": [0.2, 0.3, 0.5],
        }
    )
    items = pd.DataFrame({"iid": ["a", "b"], "text": ["red dress", "blue jeans"], "provider": ["p1", "p2"]})
    users = pd.DataFrame({"uid": ["u1", "u2"], "gender": ["f", "m"]})
    return interactions, items, users


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tabular_with_column_map(tmp_path: Path, suffix: str) -> None:
    for name, frame in zip(("interactions", "items", "users"), _tabular_frames(), strict=True):
        path = tmp_path / f"{name}{suffix}"
        frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    logs = load_logs(
        tmp_path, column_map={"uid": "user_id", "iid": "item_id"}, sensitive_attributes=["gender"]
    )
    table = logs.interactions
    assert table["user_id"].tolist() == ["u1", "u1", "u2"]
    assert table["timestamp"].iloc[1] - table["timestamp"].iloc[0] == 300
    assert logs.sensitive_attributes == ("gender",)


def test_tabular_sessions_from_gaps_and_derived_users(tmp_path: Path) -> None:
    interactions, items, _ = _tabular_frames()
    interactions.drop(columns=["session_id"]).to_csv(tmp_path / "interactions.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    logs = load_logs(
        "tabular", path=tmp_path, column_map={"uid": "user_id", "iid": "item_id"}, session_gap_s=600
    )
    assert logs.interactions["session_id"].nunique() == 2
    assert sorted(logs.users["user_id"]) == ["u1", "u2"]


def test_tabular_errors_name_the_problem(tmp_path: Path) -> None:
    interactions, items, _users = _tabular_frames()
    interactions.to_csv(tmp_path / "interactions.csv", index=False)
    with pytest.raises(DataError, match=r"interactions: missing column\(s\) \['user_id', 'item_id'\]"):
        load_logs(tmp_path)
    items.to_csv(tmp_path / "items.csv", index=False)
    with pytest.raises(DataError, match="rename yours with column_map"):
        load_logs(tmp_path)
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        load_logs("nope")


def test_shop_loader_caches_and_reads_folders(tmp_path: Path) -> None:
    from simulators.shop.files import write_shop
    from tests.conftest import SMALL_SHOP

    logs = load_logs("shop", config=SMALL_SHOP)
    again = load_logs("shop", config=SMALL_SHOP)
    pd.testing.assert_frame_equal(logs.interactions, again.interactions)
    write_shop(SMALL_SHOP, tmp_path / "shop")
    from_folder = load_logs(tmp_path / "shop")
    np.testing.assert_array_equal(from_folder.interactions["click"], logs.interactions["click"])
    assert from_folder.sensitive_attributes == ("gender", "age_group")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda frames: frames[0].drop(columns=["click"]),
            "interactions: no feedback column: give click (0/1)",
        ),
        (lambda frames: frames[0].assign(propensity=[0.2, 0.0, 0.5]), "propensity outside (0, 1]"),
        (
            lambda frames: frames[0].assign(iid=["a", "zzz", "a"]),
            "interactions.item_id: id not in the items table",
        ),
    ],
)
def test_bad_data_through_a_cli_is_one_line(tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import run_cli

    frames = _tabular_frames()
    interactions = damage(frames).rename(columns={"uid": "user_id", "iid": "item_id"})
    interactions.to_csv(tmp_path / "interactions.csv", index=False)
    frames[1].rename(columns={"iid": "item_id"}).to_csv(tmp_path / "items.csv", index=False)
    frames[2].rename(columns={"uid": "user_id"}).to_csv(tmp_path / "users.csv", index=False)
    result = run_cli("encoders.text", "--data", str(tmp_path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "out").exists()


def test_shop_config_unknown_without_a_folder() -> None:
    from simulators.core.errors import DataError
    from simulators.datasets.shop import shop_config_of
    from simulators.shop.world import ShopWorld

    logs = ShopWorld(replace(ShopConfig(), n_users=50, n_items=40, n_sessions=20)).simulate_logs()
    with pytest.raises(DataError, match="ground truth is unknown"):
        shop_config_of(logs)
