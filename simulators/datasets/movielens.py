"""MovieLens-100K and -1M: GroupLens folders, RecBole atomic files, or an installed ``recbole``.

GroupLens does not allow redistribution, so RecGym never ships the data: pass ``path`` or
install ``recbole`` (its wheel carries ml-100k as atomic files).

Mapping onto the schema: one row per rating, ``position`` = 1 (there was no slate),
``click`` = the ``like`` label (rating >= 4), ``rating`` kept as a second target. Sessions are
cut where a user is idle for more than ``session_gap_s`` (default 30 minutes). Item text is
"Title (year). Genres: A, B."; the provider is the first listed genre; users carry
``gender`` and ``age_group`` (sensitive) and ``occupation``.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd

from simulators.core.errors import DataError
from simulators.data.logs import DEFAULT_SESSION_GAP_S, LoggedData, sessionize

LIKE_THRESHOLD = 4.0
"""A rating at or above this is a ``like`` (the ``click`` label)."""

GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip
AGE_GROUPS_1M = {1: "<25", 18: "<25", 25: "25-34", 35: "35-44", 45: "45+", 50: "45+", 56: "45+"}
_YEAR_IN_TITLE = re.compile(r"\s*\((\d{4})\)\s*$")


def _age_group(age: pd.Series) -> pd.Series:
    bins = [-1, 24, 34, 44, 200]
    return pd.cut(age.astype(int), bins=bins, labels=["<25", "25-34", "35-44", "45+"]).astype(str)


def _item_text(title: str, year: str, genres: list[str]) -> str:
    year_part = f" ({year})" if year and year != "nan" else ""
    return f"{title}{year_part}. Genres: {', '.join(genres) if genres else 'unknown'}."


def _split_title(raw: str) -> tuple[str, str]:
    match = _YEAR_IN_TITLE.search(raw)
    if match:
        return raw[: match.start()].strip(), match.group(1)
    return raw.strip(), ""


def _read(path: Path, **kwargs: object) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)  # type: ignore[call-overload]
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise DataError(f"{path}: cannot read MovieLens file ({err})") from None


def _grouplens_100k(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    ratings = _read(
        folder / "u.data", sep="\t", header=None, names=["user_id", "item_id", "rating", "timestamp"]
    )
    item_cols = ["item_id", "title", "release", "video", "url", *GENRES_100K]
    raw = _read(folder / "u.item", sep="|", header=None, names=item_cols, encoding="latin-1")
    texts = []
    for row in raw.itertuples(index=False):
        title, year = _split_title(str(row.title))
        genres = [g for g, flag in zip(GENRES_100K, row[5:], strict=True) if flag == 1]
        texts.append((_item_text(title, year, genres), genres[0] if genres else "unknown"))
    items = pd.DataFrame(
        {"item_id": raw["item_id"], "text": [t for t, _ in texts], "provider": [p for _, p in texts]}
    )
    users = _read(
        folder / "u.user", sep="|", header=None, names=["user_id", "age", "gender", "occupation", "zip"]
    )
    users = pd.DataFrame(
        {
            "user_id": users["user_id"],
            "gender": users["gender"],
            "age_group": _age_group(users["age"]),
            "occupation": users["occupation"],
        }
    )
    return ratings, items, users


def _grouplens_1m(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    def read_dat(name: str, columns: list[str]) -> pd.DataFrame:
        return _read(folder / name, sep="::", header=None, names=columns, engine="python", encoding="latin-1")

    ratings = read_dat("ratings.dat", ["user_id", "item_id", "rating", "timestamp"])
    movies = read_dat("movies.dat", ["item_id", "title", "genres"])
    rows = []
    for item_id, raw_title, genre_text in movies.itertuples(index=False):
        title, year = _split_title(str(raw_title))
        genres = [g for g in str(genre_text).split("|") if g]
        rows.append((item_id, _item_text(title, year, genres), genres[0] if genres else "unknown"))
    items = pd.DataFrame(rows, columns=["item_id", "text", "provider"])
    users = read_dat("users.dat", ["user_id", "gender", "age", "occupation", "zip"])
    users = pd.DataFrame(
        {
            "user_id": users["user_id"],
            "gender": users["gender"],
            "age_group": users["age"].map(AGE_GROUPS_1M).fillna("45+"),
            "occupation": users["occupation"].astype(str),
        }
    )
    return ratings, items, users


def _atomic_file(folder: Path, suffix: str) -> Path | None:
    found = sorted(folder.glob(f"*{suffix}"))
    return found[0] if found else None


def _read_atomic(path: Path) -> pd.DataFrame:
    table = _read(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    table.columns = [c.split(":")[0] for c in table.columns]
    return table


def _recbole(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    inter_path = _atomic_file(folder, ".inter")
    item_path = _atomic_file(folder, ".item")
    if inter_path is None or item_path is None:
        raise DataError(f"{folder}: RecBole atomic files need a .inter and a .item file")
    inter = _read_atomic(inter_path)
    missing = {"user_id", "item_id", "rating", "timestamp"} - set(inter.columns)
    if missing:
        raise DataError(f"{inter_path}: missing column(s) {sorted(missing)}")
    try:
        ratings = pd.DataFrame(
            {
                "user_id": inter["user_id"].astype(np.int64),
                "item_id": inter["item_id"].astype(np.int64),
                "rating": inter["rating"].astype(np.float64),
                "timestamp": inter["timestamp"].astype(np.float64).astype(np.int64),
            }
        )
    except ValueError as err:
        raise DataError(f"{inter_path}: non-numeric id, rating or timestamp ({err})") from None
    raw_items = _read_atomic(item_path)
    texts, providers = [], []
    n = len(raw_items)
    titles = raw_items.get("movie_title", pd.Series([""] * n))
    years = raw_items.get("release_year", pd.Series([""] * n))
    classes = raw_items.get("class", pd.Series([""] * n))
    for title, year, genre_text in zip(titles, years, classes, strict=True):
        genres = str(genre_text).split()
        texts.append(_item_text(str(title), str(year), genres))
        providers.append(genres[0] if genres else "unknown")
    items = pd.DataFrame(
        {"item_id": raw_items["item_id"].astype(np.int64), "text": texts, "provider": providers}
    )
    user_path = _atomic_file(folder, ".user")
    if user_path is None:
        users = pd.DataFrame({"user_id": ratings["user_id"].drop_duplicates().to_numpy()})
    else:
        raw_users = _read_atomic(user_path)
        users = pd.DataFrame(
            {
                "user_id": raw_users["user_id"].astype(np.int64),
                "gender": raw_users["gender"],
                "age_group": _age_group(raw_users["age"].astype(int)),
                "occupation": raw_users["occupation"],
            }
        )
    return ratings, items, users


def recognises(path: Path) -> bool:
    """A GroupLens 100K/1M folder or a folder of RecBole atomic files."""
    if not path.is_dir():
        return False
    return (
        (path / "u.data").is_file()
        or (path / "ratings.dat").is_file()
        or _atomic_file(path, ".inter") is not None
    )


def installed_recbole_folder() -> Path | None:
    """``recbole/dataset_example/ml-100k`` of an installed ``recbole`` (not imported)."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / "ml-100k"
    return folder if folder.is_dir() else None


def load(
    path: str | Path | None = None,
    session_gap_s: float = DEFAULT_SESSION_GAP_S,
    spec: str | None = None,
) -> LoggedData:
    """MovieLens logs from ``path`` (GroupLens or RecBole folder) or an installed ``recbole``."""
    given = path or spec
    folder = Path(given) if given else installed_recbole_folder()
    if folder is None:
        raise DataError(
            "MovieLens not found: pass path=FOLDER (GroupLens ml-100k/ml-1m or RecBole atomic "
            "files), or `pip install recbole` whose wheel carries ml-100k"
        )
    if not folder.is_dir():
        raise DataError(f"{folder}: no such MovieLens folder")
    if (folder / "u.data").is_file():
        ratings, items, users = _grouplens_100k(folder)
    elif (folder / "ratings.dat").is_file():
        ratings, items, users = _grouplens_1m(folder)
    elif _atomic_file(folder, ".inter") is not None:
        ratings, items, users = _recbole(folder)
    else:
        raise DataError(f"{folder}: not a MovieLens folder (no u.data, ratings.dat or *.inter)")
    interactions = sessionize(ratings, session_gap_s)
    interactions = interactions.sort_values(
        ["session_id", "timestamp", "item_id"], kind="stable"
    ).reset_index(drop=True)
    interactions["position"] = np.int64(1)
    if pd.api.types.is_numeric_dtype(interactions["rating"]):
        interactions["click"] = (interactions["rating"] >= LIKE_THRESHOLD).astype(np.int64)
    else:
        interactions["click"] = 0
    interactions["rating"] = pd.to_numeric(interactions["rating"], errors="coerce")
    columns = ["user_id", "item_id", "timestamp", "session_id", "position", "click", "rating"]
    logs = LoggedData(
        interactions=interactions[columns],
        items=items,
        users=users,
        sensitive_attributes=tuple(c for c in ("gender", "age_group") if c in users.columns),
        source=f"movielens({folder.name})",
    )
    return logs.validate()
