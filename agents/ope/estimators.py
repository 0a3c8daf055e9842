"""Off-policy estimators: single items, slates and sessions (pure numpy, no torch).

Notation: ``n`` logged rounds; ``x_i`` context, ``a_i`` logged action, ``r_i`` reward,
``mu`` the logging policy, ``pi`` the target policy, ``w_i = pi(a_i|x_i) / mu(a_i|x_i)``,
``q(x, a)`` a reward model fitted on the logs (cross-fitted, see :mod:`agents.ope.reward_models`).
Each estimator is a small frozen dataclass with ``value(inputs)`` and ``weights(inputs)``
(for the effective sample size ``(sum w)^2 / sum w^2``); :func:`estimate` adds a bootstrap CI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from agents.ope.inputs import BanditInputs, Inputs, SessionInputs, SlateInputs, bootstrap_index, resample
from simulators.core.errors import DataError


class Estimator(Protocol):
    """What :func:`estimate` needs."""

    @property
    def name(self) -> str:
        """Lower-case name (the JSON key)."""
        ...

    def value(self, data: Any) -> float:
        """The point estimate."""
        ...

    def weights(self, data: Any) -> np.ndarray:
        """The importance weights behind the estimate (for the effective sample size)."""
        ...


# -------------------------------------------------------------------------- single items


@dataclass(frozen=True)
class DM:
    """Direct method: ``V = 1/n sum_i E_{a~pi(.|x_i)} q(x_i, a)``. Biased as far as ``q`` is
    wrong, no variance from weights (Beygelzimer & Langford, KDD 2009)."""

    name: str = "dm"

    def value(self, data: BanditInputs) -> float:
        """See the class docstring."""
        return float(data.require_model("dm")[1].mean())

    def weights(self, data: BanditInputs) -> np.ndarray:
        """No importance weights: every round counts once."""
        return np.ones(len(data.reward))


@dataclass(frozen=True)
class IPS:
    """Inverse propensity scoring, optionally clipped: ``V = 1/n sum_i min(w_i, c) r_i``
    (Horvitz & Thompson 1952; clipping: Strehl et al., NeurIPS 2010). Unbiased at ``c = inf``."""

    clip: float = np.inf
    """Largest weight kept (``inf`` = plain IPS)."""
    name: str = "ips"

    def __post_init__(self) -> None:
        if not self.clip > 0:
            raise DataError(f"clip must be > 0, got {self.clip}")

    def weights(self, data: BanditInputs) -> np.ndarray:
        """``min(w_i, c)``."""
        return np.minimum(data.w, self.clip)

    def value(self, data: BanditInputs) -> float:
        """See the class docstring."""
        return float(np.mean(self.weights(data) * data.reward))


@dataclass(frozen=True)
class SNIPS:
    """Self-normalised IPS: ``V = sum_i w_i r_i / sum_i w_i``; stays within the rewards' range
    (Swaminathan & Joachims, NeurIPS 2015)."""

    name: str = "snips"

    def weights(self, data: BanditInputs) -> np.ndarray:
        """``w_i``."""
        return data.w

    def value(self, data: BanditInputs) -> float:
        """See the class docstring."""
        w = data.w
        return float((w * data.reward).sum() / w.sum()) if w.sum() > 0 else 0.0


@dataclass(frozen=True)
class DR:
    """Doubly robust: ``V = 1/n sum_i [E_pi q(x_i, .) + w_i (r_i - q(x_i, a_i))]``; unbiased
    if the propensities are right, low-variance if ``q`` is good (Dudik et al., ICML 2011)."""

    name: str = "dr"

    def weights(self, data: BanditInputs) -> np.ndarray:
        """``w_i``."""
        return data.w

    def value(self, data: BanditInputs) -> float:
        """See the class docstring."""
        q_logged, q_target = data.require_model(self.name)
        return float(np.mean(q_target + data.w * (data.reward - q_logged)))


@dataclass(frozen=True)
class SNDR:
    """Self-normalised DR: ``V = 1/n sum_i E_pi q(x_i, .) + sum_i w_i (r_i - q(x_i, a_i)) / sum_i w_i``
    (Kallus & Uehara, NeurIPS 2019)."""

    name: str = "sndr"

    def weights(self, data: BanditInputs) -> np.ndarray:
        """``w_i``."""
        return data.w

    def value(self, data: BanditInputs) -> float:
        """See the class docstring."""
        q_logged, q_target = data.require_model(self.name)
        w = data.w
        correction = (w * (data.reward - q_logged)).sum() / w.sum() if w.sum() > 0 else 0.0
        return float(q_target.mean() + correction)


@dataclass(frozen=True)
class SwitchDR:
    """Switch-DR: ``V = 1/n sum_i [E_pi q(x_i, .) + 1{w_i <= tau} w_i (r_i - q(x_i, a_i))]``:
    the DR correction only where the weight is at most ``tau`` (DR at ``tau = inf``, DM at 0).
    Wang, Agarwal & Dudik, ICML 2017, in the form Open Bandit Pipeline implements."""

    tau: float = 100.0
    """Switching threshold on the importance weight."""
    name: str = "switch_dr"

    def __post_init__(self) -> None:
        if not self.tau >= 0:
            raise DataError(f"tau must be >= 0, got {self.tau}")

    def weights(self, data: BanditInputs) -> np.ndarray:
        """``w_i`` where used, else 0."""
        return np.where(data.w <= self.tau, data.w, 0.0)

    def value(self, data: BanditInputs) -> float:
        """See the class docstring."""
        q_logged, q_target = data.require_model(self.name)
        return float(np.mean(q_target + self.weights(data) * (data.reward - q_logged)))


# ---------------------------------------------------------------------------------- slates


@dataclass(frozen=True)
class SlateDM:
    """Slate direct method: ``V = 1/n sum_i sum_k E_{s~pi(.|x_i)} q(x_i, s_k, k)``."""

    name: str = "dm"

    def weights(self, data: SlateInputs) -> np.ndarray:
        """No importance weights."""
        return np.ones(len(data.reward))

    def value(self, data: SlateInputs) -> float:
        """See the class docstring."""
        if data.q_target is None:
            raise DataError("dm needs a reward model (q_target)")
        return float(data.q_target.sum(axis=1).mean())


class _SlotWeighted:
    """``V = 1/n sum_i sum_k w_ik r_ik`` for per-slot weights ``w (n, K)`` (the subclass's)."""

    def weights(self, data: SlateInputs) -> np.ndarray:
        """``(n, K)`` per-slot weights."""
        raise NotImplementedError

    def value(self, data: SlateInputs) -> float:
        """See the class docstring."""
        return float(np.mean((self.weights(data) * data.reward).sum(axis=1)))


@dataclass(frozen=True)
class IIPS(_SlotWeighted):
    """Independent IPS: ``V = 1/n sum_i sum_k [pi_k(a_ik|x_i) / mu_k(a_ik|x_i)] r_ik`` with
    position-wise marginals. Unbiased when each slot's reward depends only on its own item
    (the position-based click model); Li et al., "Offline evaluation of ranking policies with
    click models", KDD 2018."""

    name: str = "iips"

    def weights(self, data: SlateInputs) -> np.ndarray:
        """``(n, K)`` per-slot weights."""
        return data.marginal_ratio(self.name)


@dataclass(frozen=True)
class RIPS(_SlotWeighted):
    """Reward-interaction IPS (cascade): ``V = 1/n sum_i sum_k [pi(a_i1..a_ik|x_i) /
    mu(a_i1..a_ik|x_i)] r_ik``. Unbiased when a slot's reward depends only on the items at
    and above it (cascade behaviour); McInerney et al., KDD 2020."""

    name: str = "rips"

    def weights(self, data: SlateInputs) -> np.ndarray:
        """``(n, K)`` prefix weights."""
        return data.target_prefix / data.pscore_prefix


@dataclass(frozen=True)
class SlateIPS:
    """Standard slate IPS: ``V = 1/n sum_i [pi(s_i|x_i) / mu(s_i|x_i)] sum_k r_ik``; unbiased
    under any click model, with the variance of whole-slate weights."""

    name: str = "sips"

    def weights(self, data: SlateInputs) -> np.ndarray:
        """``(n,)`` whole-slate weights."""
        return data.target_prefix[:, -1] / data.pscore_prefix[:, -1]

    def value(self, data: SlateInputs) -> float:
        """See the class docstring."""
        return float(np.mean(self.weights(data) * data.reward.sum(axis=1)))


@dataclass(frozen=True)
class CascadeDR:
    """Cascade doubly robust: ``V = 1/n sum_i sum_k [w_i,1:k (r_ik - q(x_i, a_ik, k))
    + w_i,1:k-1 E_{a~pi(.|x_i, a_i,1:k-1)} q(x_i, a, k)]`` with prefix weights ``w_i,1:k``
    (``w_i,1:0 = 1``). Kiyohara et al., "Doubly robust off-policy evaluation for ranking
    policies under the cascade behavior model", WSDM 2022."""

    name: str = "cascade_dr"

    def weights(self, data: SlateInputs) -> np.ndarray:
        """``(n, K)`` prefix weights."""
        return data.target_prefix / data.pscore_prefix

    def value(self, data: SlateInputs) -> float:
        """See the class docstring."""
        if data.q_logged is None or data.q_target_next is None:
            raise DataError("cascade_dr needs a reward model (q_logged and q_target_next)")
        w = self.weights(data)
        before = np.concatenate([np.ones((len(w), 1)), w[:, :-1]], axis=1)
        return float(np.mean((w * (data.reward - data.q_logged) + before * data.q_target_next).sum(axis=1)))


@dataclass(frozen=True)
class IndependentDR:
    """IIPS made doubly robust: ``V = 1/n sum_i sum_k [E_{s~pi(.|x_i)} q(x_i, s_k, k)
    + (pi_k(a_ik|x_i) / mu_k(a_ik|x_i)) (r_ik - q(x_i, a_ik, k))]`` with position-wise marginals.
    Unbiased under IIPS's assumption (each slot's reward depends on its own item and slot) when
    either the marginals or the reward model are right; the model cuts IIPS's variance by what
    it explains. The position-based DR of Oosterhuis, "Doubly robust estimation for correcting
    position bias in click feedback for unbiased learning to rank", ACM TOIS 2023."""

    name: str = "iips_dr"

    def weights(self, data: SlateInputs) -> np.ndarray:
        """``(n, K)`` per-slot weights (IIPS's)."""
        return data.marginal_ratio(self.name)

    def value(self, data: SlateInputs) -> float:
        """See the class docstring."""
        if data.q_logged is None or data.q_target is None:
            raise DataError(f"{self.name} needs a reward model (q_logged and q_target)")
        correction = self.weights(data) * (data.reward - data.q_logged)
        return float(np.mean((data.q_target + correction).sum(axis=1)))


@dataclass(frozen=True)
class PBMIPS(IIPS):
    """Position-based IPS: ``V = 1/n sum_i sum_k [e_pi(a_ik|x_i) / e_mu(a_ik|x_i)] r_ik`` with
    ``e(a|x) = sum_j theta_j P(a at slot j | x)``, the item's examination-weighted exposure over
    all slots (``theta``: the position-based model's examination per slot, estimated from the
    logs; only its ratios matter). Unbiased under the position-based click model
    ``P(click at j) = theta_j gamma(x, a)``: a logged click on item a counts wherever the logger
    showed it, so the weights pool the slots and vary far less than IIPS's. Li, Abbasi-Yadkori,
    Kveton, Muthukrishnan, Vinay & Wen, "Offline evaluation of ranking policies with click
    models", KDD 2018 (the PBM estimator). :class:`IIPS`'s formula with these weights."""

    name: str = "pbm_ips"

    def weights(self, data: SlateInputs) -> np.ndarray:
        """``(n, K)`` exposure ratios."""
        return data.exposure_ratio(self.name)


@dataclass(frozen=True)
class PBMDR(IndependentDR):
    """Position-based DR: ``V = 1/n sum_i sum_k [E_{s~pi(.|x_i)} q(x_i, s_k, k) + (e_pi(a_ik|x_i)
    / e_mu(a_ik|x_i)) (r_ik - q(x_i, a_ik, k))]``: :class:`PBMIPS`'s weights on the residuals of
    a position-based reward model ``q(x, a, k) = theta_k gamma(x, a)``. Unbiased under the
    position-based click model when either the exposures or the relevance ``gamma`` are right;
    the DR form of Oosterhuis, ACM TOIS 2023, with Li et al.'s exposure weights
    (:class:`IndependentDR`'s formula with these weights)."""

    name: str = "pbm_dr"

    def weights(self, data: SlateInputs) -> np.ndarray:
        """``(n, K)`` exposure ratios."""
        return data.exposure_ratio(self.name)


# -------------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class PDIS:
    """Per-decision importance sampling: ``V = 1/n sum_i sum_t rho_i,1:t r_it`` with
    ``rho_i,1:t = prod_{j<=t} pi(a_ij|x_ij) / mu(a_ij|x_ij)`` (Precup, Sutton & Singh, ICML 2000)."""

    name: str = "pdis"

    def weights(self, data: SessionInputs) -> np.ndarray:
        """``(n, T)`` cumulative ratios."""
        return data.cumulative_ratio

    def value(self, data: SessionInputs) -> float:
        """See the class docstring."""
        return float(np.mean((data.cumulative_ratio * data.reward * data.mask).sum(axis=1)))


@dataclass(frozen=True)
class WPDIS:
    """Weighted PDIS: ``V = sum_t sum_i rho_i,1:t r_it / sum_i rho_i,1:t`` (finished sessions
    keep their last ratio and earn 0); consistent, bounded by the rewards' range per step."""

    name: str = "wpdis"

    def weights(self, data: SessionInputs) -> np.ndarray:
        """``(n, T)`` cumulative ratios."""
        return data.cumulative_ratio

    def value(self, data: SessionInputs) -> float:
        """See the class docstring."""
        rho = data.cumulative_ratio
        totals = rho.sum(axis=0)
        per_step = np.divide(
            (rho * data.reward * data.mask).sum(axis=0), totals, out=np.zeros_like(totals), where=totals > 0
        )
        return float(per_step.sum())


@dataclass(frozen=True)
class WDR:
    """Weighted doubly robust: ``V = sum_t sum_i [w_it r_it - (w_it Q(x_it, a_it) - w_i,t-1 V(x_it))]``
    with self-normalised ``w_it = rho_i,1:t / sum_j rho_j,1:t`` and ``w_i,0 = 1/n``
    (Thomas & Brunskill, ICML 2016)."""

    name: str = "wdr"

    def weights(self, data: SessionInputs) -> np.ndarray:
        """``(n, T)`` cumulative ratios."""
        return data.cumulative_ratio

    def value(self, data: SessionInputs) -> float:
        """See the class docstring."""
        if data.q_logged is None or data.v_target is None:
            raise DataError("wdr needs a reward model (q_logged and v_target)")
        rho = data.cumulative_ratio
        totals = rho.sum(axis=0, keepdims=True)
        w = np.divide(rho, totals, out=np.zeros_like(rho), where=totals > 0)
        before = np.concatenate([np.full((len(w), 1), 1.0 / len(w)), w[:, :-1]], axis=1)
        m = data.mask
        return float((m * (w * data.reward - (w * data.q_logged - before * data.v_target))).sum())


# ---------------------------------------------------------------------------- estimating


@dataclass(frozen=True)
class Estimate:
    """A value with its bootstrap 95% interval and effective sample size."""

    value: float
    ci95: tuple[float, float]
    ess: float
    """``(sum w)^2 / sum w^2`` over the estimator's weights (n when every weight is 1)."""
    extra: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The OPE JSON's entry (with a ``warning`` when the ESS is below :data:`MIN_ESS`)."""
        entry: dict[str, object] = {
            "value": self.value,
            "ci95": list(self.ci95),
            "ess": self.ess,
            **self.extra,
        }
        if self.ess < MIN_ESS:
            entry["warning"] = (
                f"effective sample size {self.ess:.0f} < {MIN_ESS}: a handful of rounds carry the estimate, "
                "so neither it nor its interval can be trusted"
            )
        return entry


MIN_ESS = 30
"""Below this effective sample size an estimate is reported with a warning."""


def effective_sample_size(weights: np.ndarray) -> float:
    """``(sum w)^2 / sum w^2`` of per-round weights (a slate's weights are averaged per round)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 2:
        w = w.mean(axis=1)
    total = float((w**2).sum())
    return float(w.sum() ** 2 / total) if total > 0 else 0.0


def estimate(
    estimator: Estimator, data: Inputs, n_bootstrap: int = 100, rng: np.random.Generator | None = None
) -> Estimate:
    """Point estimate, bootstrap 95% CI and the ESS.

    The bootstrap resamples rounds (whole clusters where the inputs name them; sessions for
    session inputs); the interval is the normal one, ``value +- 1.96 sd(draws)``: at the few
    resamples a benchmark can afford, percentile intervals are too narrow (their coverage is
    measured by ``python -m benchmarks.ope_accuracy``).
    """
    if n_bootstrap < 0:
        raise DataError(f"bootstrap resamples must be >= 0, got {n_bootstrap}")
    value = estimator.value(data)
    rng = rng if rng is not None else np.random.default_rng(0)
    n, cluster = len(data.reward), getattr(data, "cluster", None)
    draws = [estimator.value(resample(data, bootstrap_index(n, cluster, rng))) for _ in range(n_bootstrap)]
    half_width = 1.96 * float(np.std(draws, ddof=1)) if len(draws) > 1 else 0.0
    return Estimate(
        value, (value - half_width, value + half_width), effective_sample_size(estimator.weights(data))
    )


def unsupported(estimator: Estimator, data: Inputs) -> str | None:
    """Why ``estimator`` cannot estimate anything on ``data`` (``None`` when it can): every
    importance weight is 0 because the target never takes what the logs show (the doubly robust
    forms would be left with a piece of their reward model, which is not the estimate they name)."""
    if effective_sample_size(estimator.weights(data)) == 0:
        return (
            "every importance weight is 0: the target never chooses what the logs show in this form "
            "(whole slates for sips, whole sessions for the session estimators), so there is nothing to weight"
        )
    return None


BANDIT_ESTIMATORS: dict[str, Estimator] = {"dm": DM(), "ips": IPS(), "snips": SNIPS(), "dr": DR(), "sndr": SNDR(),
                     "switch_dr": SwitchDR(), "clipped_ips": IPS(clip=100.0, name="clipped_ips")}  # fmt: skip
SLATE_ESTIMATORS: dict[str, Estimator] = {
    "dm": SlateDM(),
    "iips": IIPS(),
    "iips_dr": IndependentDR(),
    "rips": RIPS(),
    "sips": SlateIPS(),
    "cascade_dr": CascadeDR(),
    "pbm_ips": PBMIPS(),
    "pbm_dr": PBMDR(),
}
SESSION_ESTIMATORS: dict[str, Estimator] = {"pdis": PDIS(), "wpdis": WPDIS(), "wdr": WDR()}


def _named(table: dict[str, Estimator], wanted: list[str] | None) -> dict[str, Estimator]:
    if not wanted:
        return table
    return {name: table[name] for name in wanted if name in table}


def estimate_all(
    table: dict[str, Estimator], data: Inputs, wanted: list[str] | None, n_bootstrap: int, seed: int
) -> dict[str, Any]:  # fmt: skip
    """One section of the OPE JSON: ``{"estimates": {name: entry}}`` for every (wanted) estimator
    of ``table`` on ``data``, and ``"unavailable": {name: why}`` for those that cannot apply
    (:func:`unsupported`)."""
    estimates: dict[str, object] = {}
    unavailable: dict[str, object] = {}
    for name, estimator in _named(table, wanted).items():
        if (why := unsupported(estimator, data)) is not None:
            unavailable[name] = why
        else:
            estimates[name] = estimate(estimator, data, n_bootstrap, np.random.default_rng(seed)).to_json()
    return {"estimates": estimates, **({"unavailable": unavailable} if unavailable else {})}
