"""The fairness weight in a world's own engagement scale: one default that means the same on any logs.

The reward is ``engagement - fairness_lambda * penalty`` per step, where the penalty is the
step's growth of the protected group's exposure deficit as a share of the slate's exposure
(``envs.engine.ledger_kernel``): a number in [0, 1] whatever the logs. Engagement per step is not:
the greedy CTR ranking earns 3.17 clicks and purchases per step in the fitted shop and 2.06 on
MovieLens-100K. A fixed ``fairness_lambda`` therefore prices exposure 1.5 times dearer on
MovieLens than on the shop (in engagement). The main job instead sets a *price*
(``TrainConfig.fairness_price``), in steps of engagement per unit of deficit, and

    fairness_lambda = round(price * s, 1),   s = engagement per step of greedy CTR

with ``s`` measured in the world's fitted simulator on :data:`SCALE_SESSIONS` sessions of the
tuning users (:data:`agents.evaluation.tuning.TUNING_SEED`, never an evaluation's). Greedy CTR is
the scale because it ignores the reward, so the scale does not depend on the weight it sets.
:data:`FAIRNESS_PRICE` is the shop's ``fairness_lambda`` of 8 (``benchmarks.fairness``) divided by
the shop's ``s``: on the shop the priced weight is 8.0, as before.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

import numpy as np

from agents.evaluation.sessions import run_sessions
from agents.evaluation.tuning import SESSION_OPTIONS, TUNING_SEED, tuning_env
from agents.policies.baselines import make_baseline
from envs.config import EnvConfig
from envs.world import world_key
from simulators.core.storage import cache_dir, content_key, load_or_build, manifest_beside, write_text_atomic

SHOP_FAIRNESS_LAMBDA = 8.0
"""The shop's ``fairness_lambda`` (merit-based target): the smallest of ``benchmarks.fairness``'s
sweep whose PPO keeps the protected exposure share at or above its target - 0.02 in the fitted and
in the true shop, for every seed, with a return at or above the static CTR ranking's."""
SHOP_ENGAGEMENT_PER_STEP = 3.1744
"""Greedy CTR's engagement (clicks + purchases) per step in the fitted shop, measured by
:func:`engagement_per_step` on the default shop (``python -m agents.evaluation.fairness_scale``)."""
FAIRNESS_PRICE = round(SHOP_FAIRNESS_LAMBDA / SHOP_ENGAGEMENT_PER_STEP, 3)
"""The main job's default price of exposure deficit: a slate's whole share of deficit costs this
many steps of greedy CTR's engagement (2.52; ``fairness_lambda`` 8.0 on the shop)."""
SCALE_SESSIONS = 1_000
"""Greedy CTR sessions that measure a world's engagement per step."""
SCALE_VERSION = 1
"""Bump when the measurement changes, so cached scales are measured again."""


@dataclass(frozen=True)
class FairnessScale:
    """How a priced ``fairness_lambda`` was set (``config.json``'s and ``metrics.json``'s ``fairness_scale``)."""

    price: float
    """Steps of engagement per unit of exposure deficit (``--fairness-price``)."""
    engagement_per_step: float
    """Greedy CTR's engagement per step in the world's fitted simulator."""
    fairness_lambda: float
    """``round(price * engagement_per_step, 1)``."""

    def line(self) -> str:
        """One line for the table."""
        return (
            f"fairness_lambda {self.fairness_lambda:.1f} = price {self.price:g} x {self.engagement_per_step:.3f} "
            "engagement per step of greedy CTR on these logs (--fairness-lambda fixes it instead)"
        )


def engagement_per_step(config: EnvConfig) -> float:
    """Greedy CTR's clicks plus ``purchase_weight`` purchases per step in ``config``'s fitted
    simulator, over :data:`SCALE_SESSIONS` sessions of the tuning users (deterministic). Cached
    per world and session options beside the tuned re-rankers (``$RECGYM_CACHE/baselines``)."""
    env = replace(tuning_env(config), fairness_lambda=0.0, user_fairness_lambda=0.0)
    session = {k: v for k, v in asdict(env).items() if k in SESSION_OPTIONS}
    file = (
        cache_dir("baselines")
        / f"{content_key('scale', SCALE_VERSION, world_key(env), session, SCALE_SESSIONS)}.json"
    )

    def measure() -> float:
        result = run_sessions(make_baseline("ctr"), env, SCALE_SESSIONS, TUNING_SEED, progress=False)
        engagement = result.clicks.sum() + config.purchase_weight * result.purchases.sum()
        value = float(engagement / max(int(result.lengths.sum()), 1))
        write_text_atomic(file, json.dumps({"engagement_per_step": value}) + "\n")
        return value

    def cached() -> float:
        value = json.loads(file.read_text(encoding="utf-8"))["engagement_per_step"]
        if not isinstance(value, float) or not np.isfinite(value) or value < 0:
            raise ValueError(f"its engagement per step {value!r} is not a finite number >= 0")
        return value

    return load_or_build("engagement scale", manifest_beside(file), [file], cached, measure)


def priced_fairness(config: EnvConfig, price: float) -> FairnessScale:
    """The ``fairness_lambda`` that ``price`` sets in ``config``'s world."""
    scale = round(engagement_per_step(config), 4)  # the weight follows from the figure recorded
    return FairnessScale(price, scale, float(np.round(price * scale, 1)))


if __name__ == "__main__":
    print(f"{engagement_per_step(EnvConfig(data='shop', action_mode='weights')):.4f}")
