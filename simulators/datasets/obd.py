"""The Open Bandit Dataset (ZOZOTOWN): the vendored small sample, or the full set from a path.

Saito, Aihara, Matsutani, Narita, "Open Bandit Dataset and Pipeline: Towards Realistic and
Reproducible Off-Policy Evaluation", NeurIPS 2021 Datasets and Benchmarks. Apache-2.0.

Mapping onto the schema: one row per impression, ``session_id`` = the row, ``propensity`` =
``propensity_score``; OBD has no user ids, so ``user_id`` numbers the distinct combinations of
the four hashed user features (a user *type*). The user features and the user-item affinities
stay on each row as context. Item features are hashed, so an item's text lists them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from simulators.core.errors import DataError
from simulators.data.logs import LoggedData

SAMPLE_ROOT = Path(__file__).with_name("obd_sample")
"""The vendored small-sized sample (10,000 rows per policy and campaign)."""
POLICIES = ("random", "bts")
CAMPAIGNS = ("all", "men", "women")
USER_FEATURES = tuple(f"user_feature_{i}" for i in range(4))


def recognises(path: Path) -> bool:
    """An OBD root folder (``random/`` and ``bts/`` with campaign subfolders)."""
    return path.is_dir() and (path / "random" / "all").is_dir()


def recognises_logs(logs: LoggedData) -> bool:
    """Logs this loader read (their ``source`` is ``obd(POLICY/CAMPAIGN)``)."""
    return logs.source.startswith("obd(")


def _campaign_file(root: Path, policy: str, campaign: str) -> Path:
    folder = root / policy / campaign
    for name in (f"{campaign}.csv", f"{campaign}.csv.gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: no {campaign}.csv or {campaign}.csv.gz (is {root} an OBD root?)")


def prior_bts(campaign: str, root: Path = SAMPLE_ROOT) -> tuple[np.ndarray, np.ndarray]:
    """The production Bernoulli-TS Beta priors ``(alpha, beta)`` of a campaign, per item."""
    with (root / "prior_bts.yaml").open(encoding="utf-8") as handle:
        priors = yaml.safe_load(handle)
    if campaign not in priors:
        raise DataError(f"prior_bts.yaml has no campaign {campaign!r}")
    return np.asarray(priors[campaign]["alpha"], dtype=np.float64), np.asarray(
        priors[campaign]["beta"], dtype=np.float64
    )


def load(
    path: str | Path | None = None,
    policy: str = "random",
    campaign: str = "all",
    spec: str | None = None,
) -> LoggedData:
    """One policy's logs for one campaign; ``spec`` is ``"POLICY/CAMPAIGN"`` (``"bts/men"``)."""
    if spec:
        policy, _, rest = spec.partition("/")
        campaign = rest or campaign
    if policy not in POLICIES:
        raise DataError(f"OBD policy must be one of {POLICIES}, got {policy!r}")
    if campaign not in CAMPAIGNS:
        raise DataError(f"OBD campaign must be one of {CAMPAIGNS}, got {campaign!r}")
    root = Path(path) if path is not None else SAMPLE_ROOT
    raw = pd.read_csv(_campaign_file(root, policy, campaign), index_col=0)
    required = {"timestamp", "item_id", "position", "click", "propensity_score", *USER_FEATURES}
    if missing := required - set(raw.columns):
        raise DataError(f"OBD {policy}/{campaign}: missing column(s) {sorted(missing)}")
    user_key = raw[list(USER_FEATURES)].astype(str).agg("|".join, axis=1)
    user_id, uniques = pd.factorize(user_key)
    timestamp = (pd.to_datetime(raw["timestamp"], utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    interactions = pd.DataFrame(
        {
            "user_id": user_id.astype(np.int64),
            "item_id": raw["item_id"].astype(np.int64),
            "timestamp": timestamp.to_numpy(),
            "session_id": np.arange(len(raw), dtype=np.int64),
            "position": raw["position"].astype(np.int64),
            "click": raw["click"].astype(np.int64),
            "propensity": raw["propensity_score"].astype(np.float64),
        }
    )
    context = raw.drop(columns=["timestamp", "item_id", "position", "click", "propensity_score"])
    interactions = pd.concat([interactions, context.reset_index(drop=True)], axis=1)
    first = raw.drop_duplicates(subset=list(USER_FEATURES))
    users = pd.DataFrame(
        {
            "user_id": np.arange(len(uniques), dtype=np.int64),
            **{c: first[c].to_numpy() for c in USER_FEATURES},
        }
    )
    item_context = pd.read_csv(root / policy / campaign / "item_context.csv", index_col=0)
    items = pd.DataFrame(
        {
            "item_id": item_context["item_id"].astype(np.int64),
            "text": [
                f"Fashion item {r.item_id}: price score {r.item_feature_0:.2f}, "
                f"tags {str(r.item_feature_1)[:8]} {str(r.item_feature_2)[:8]} {str(r.item_feature_3)[:8]}."
                for r in item_context.itertuples(index=False)
            ],
            "provider": item_context["item_feature_1"].astype(str).str[:8],
        }
    )
    items = pd.concat([items, item_context.drop(columns=["item_id"]).reset_index(drop=True)], axis=1)
    logs = LoggedData(interactions=interactions, items=items, users=users, source=f"obd({policy}/{campaign})")
    return logs.validate()
