"""The compiled step of the ranking environments: one fused loop per user (numba).

It applies, per user and in this order, exactly the equations of ``simulators.response.respond``
and ``simulators.dynamics`` on a simulator's :class:`~simulators.response.ResponseTables`:
rank, click / purchase, advance drift and boredom, leave hazard, then the agent-visible
bookkeeping (history, topic exposure) and the exposure ledger. ``tests/envs/test_engine.py`` checks
it against the numpy reference. Uniforms come from :func:`splitmix_uniform` of (key, step, j);
a session's own leave offset from :func:`session_normal` of its key.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from envs.config import FEATURES
from simulators.dynamics import DynamicsParams
from simulators.response import ResponseTables

# Layout of the ``params`` vector passed to the kernel; :func:`engine_params` fills it.
P_DRIFT_PER_CLICK, P_DRIFT_RETENTION, P_BOREDOM_PER_VIEW, P_BOREDOM_PER_CLICK = 0, 1, 2, 3
P_BOREDOM_RETENTION, P_BOREDOM_WEIGHT, P_LEAVE_BIAS, P_LEAVE_PER_BOREDOM = 4, 5, 6, 7
P_LEAVE_IF_NO_CLICK, P_LEAVE_PER_CLICK, P_PURCHASE_DRIFT, P_EXPOSURE_RETENTION = 8, 9, 10, 11
P_HAS_PURCHASES, P_LEAVE_SESSION_SD = 12, 13
N_PARAMS = 14


def engine_params(dynamics: DynamicsParams, tables: ResponseTables, exposure_retention: float) -> np.ndarray:
    """The kernel's parameter vector (layout: the ``P_*`` indices above)."""
    params = np.zeros(N_PARAMS)
    params[P_DRIFT_PER_CLICK] = dynamics.drift_per_click
    params[P_DRIFT_RETENTION] = dynamics.drift_retention
    params[P_BOREDOM_PER_VIEW] = dynamics.boredom_per_view
    params[P_BOREDOM_PER_CLICK] = dynamics.boredom_per_click
    params[P_BOREDOM_RETENTION] = dynamics.boredom_retention
    params[P_BOREDOM_WEIGHT] = dynamics.boredom_weight
    params[P_LEAVE_BIAS] = dynamics.leave_bias
    params[P_LEAVE_PER_BOREDOM] = dynamics.leave_per_boredom
    params[P_LEAVE_IF_NO_CLICK] = dynamics.leave_if_no_click
    params[P_LEAVE_PER_CLICK] = dynamics.leave_per_click
    params[P_PURCHASE_DRIFT] = tables.purchase_drift_weight
    params[P_EXPOSURE_RETENTION] = exposure_retention
    params[P_HAS_PURCHASES] = float(tables.has_purchases)
    params[P_LEAVE_SESSION_SD] = dynamics.leave_session_sd
    return params


# Columns of ``candidate_features`` the kernel reads or writes.
F_PROTECTED = FEATURES.index("protected")
F_TOPIC_EXPOSURE = FEATURES.index("session_topic_exposure")
# Columns of ``out_stats``.
S_CLICKS, S_PURCHASES, S_PROTECTED, S_MERIT_TOTAL, S_MERIT_PROTECTED = 0, 1, 2, 3, 4
S_REPEAT_SHOWN, S_REPEAT_CLICKS = 5, 6  # slots whose topic was shown earlier this session, their clicks
N_STATS = 7

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_STEP_STRIDE = np.uint64(0x100000001B3)


@njit(cache=True)
def splitmix_uniform(key: np.uint64, step: int, column: int) -> float:
    """A uniform in [0, 1) from a SplitMix64 hash of (key, step, column)."""
    x = key ^ (np.uint64(step) * _STEP_STRIDE + np.uint64(column))
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


SESSION_DRAW_STEP = 2**41
"""The counter step of a session's own draws (:func:`session_normal`): above every step a session
plays and every :data:`envs.retention.RETURN_STEP` ``+ j``."""


@njit(cache=True)
def session_normal(key: np.uint64) -> float:
    """A standard normal fixed by a session's key (Box-Muller on two of its uniforms at
    :data:`SESSION_DRAW_STEP`): the session's own leave offset, in units of
    ``DynamicsParams.leave_session_sd``."""
    u1 = 1.0 - splitmix_uniform(key, SESSION_DRAW_STEP, 0)  # (0, 1]
    u2 = splitmix_uniform(key, SESSION_DRAW_STEP, 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True)
def counter_uniforms(keys: np.ndarray, steps: np.ndarray, width: int) -> np.ndarray:
    """``(B, width)`` uniforms: :func:`splitmix_uniform` of ``(keys[b], steps[b], j)``."""
    out = np.empty((keys.shape[0], width))
    for b in range(keys.shape[0]):
        for j in range(width):
            out[b, j] = splitmix_uniform(keys[b], steps[b], j)
    return out


@njit(cache=True)
def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


@njit(cache=True)
def _top_k(scores: np.ndarray, k: int, out: np.ndarray) -> None:
    """Top ``k`` positions in one pass by sorted insertion; equal scores keep index order.
    Allocates nothing (a per-user scratch array costs a heap allocation per step)."""
    filled = 0
    for j in range(scores.shape[0]):
        score = scores[j]
        if filled == k and not score > scores[out[k - 1]]:
            continue
        p = filled if filled < k else k - 1
        while p > 0 and score > scores[out[p - 1]]:
            out[p] = out[p - 1]
            p -= 1
        out[p] = j
        if filled < k:
            filled += 1


@njit(cache=True)
def _rank(
    scores: np.ndarray,
    topics: np.ndarray,
    k: int,
    one_per_topic: bool,
    taken: np.ndarray,
    used: np.ndarray,
    out: np.ndarray,
) -> None:
    """Top ``k`` candidate positions by score (ties: lower index), optionally distinct topics
    first. ``taken (N,)`` and ``used (n_topics,)`` are scratch buffers."""
    n = scores.shape[0]
    if not one_per_topic:
        _top_k(scores, k, out)
        return
    taken[:] = False
    filled = 0
    if one_per_topic:
        used[:] = False
        while filled < k:
            best, best_score = -1, -np.inf
            for j in range(n):
                if not taken[j] and not used[topics[j]] and (best < 0 or scores[j] > best_score):
                    best, best_score = j, scores[j]
            if best < 0:
                break
            taken[best] = True
            used[topics[best]] = True
            out[filled] = best
            filled += 1
    while filled < k:
        best, best_score = -1, -np.inf
        for j in range(n):
            if not taken[j] and (best < 0 or scores[j] > best_score):
                best, best_score = j, scores[j]
        taken[best] = True
        out[filled] = best
        filled += 1


def _step(
    scores: np.ndarray,  # (B, N) float32 or float64
    one_per_topic: np.ndarray,  # (B,) bool
    users: np.ndarray,  # (B,) int64
    keys: np.ndarray,  # (B,) uint64
    steps: np.ndarray,  # (B,) int64
    candidates: np.ndarray,  # (B, N) int32 (ranking.ID_DTYPE)
    candidate_topics: np.ndarray,  # (B, N) int32
    candidate_features: np.ndarray,  # (B, N, F) float32; last column updated here
    candidate_logits: np.ndarray,  # (U, N, 2) float32: static click, purchase logit per user's candidate
    candidate_merit: np.ndarray,  # (U, 2) float64: relevance offered to each user, all and protected
    user_traits: np.ndarray,  # (U, 2) float64: boredom scale, leave offset (UserTraits.as_array)
    slot_bias: np.ndarray,  # (K,) float64
    item_topic: np.ndarray,  # (M,) int64
    drift: np.ndarray,  # (B, C) float64, updated
    boredom: np.ndarray,  # (B, C) float64, updated
    topic_exposure: np.ndarray,  # (B, C) float64, updated
    history: np.ndarray,  # (B, H) int32 (ranking.ID_DTYPE), updated
    params: np.ndarray,  # (N_PARAMS,) float64
    out_items: np.ndarray,  # (B, K) int64
    out_click: np.ndarray,  # (B, K) int8
    out_purchase: np.ndarray,  # (B, K) int8
    out_p_click: np.ndarray,  # (B, K) float64
    out_p_purchase: np.ndarray,  # (B, K) float64: P(purchase | click) where clicked, else 0
    out_leave: np.ndarray,  # (B,) bool
    out_p_leave: np.ndarray,  # (B,) float64: the leave hazard
    out_stats: np.ndarray,  # (B, N_STATS) float64
    scratch_taken: np.ndarray,  # (B, N) bool
    scratch_used: np.ndarray,  # (B, C) bool
    forced: np.ndarray,  # (B, 2, K) int8: observed clicks (row 0) and purchases (row 1); -1 = draw
) -> None:
    """One step for every user in the batch (see the module docstring). Users are
    independent: each writes only its own rows, so the parallel build gives the same results.
    Where ``forced`` holds a 0 or 1 the click (purchase) is that observation instead of a draw:
    the same equations then turn what a real user did into the model's state (a belief)."""
    batch, k = out_items.shape
    n_topics = drift.shape[1]
    length = history.shape[1]
    for b in prange(batch):
        slate = out_items[b]  # holds candidate positions until the items replace them
        _rank(scores[b], candidate_topics[b], k, one_per_topic[b], scratch_taken[b], scratch_used[b], slate)
        user = users[b]
        logits = candidate_logits[user]
        n_clicks = 0
        out_stats[b, S_PURCHASES] = 0.0
        out_stats[b, S_PROTECTED] = 0.0
        out_stats[b, S_MERIT_TOTAL] = candidate_merit[user, 0]
        out_stats[b, S_MERIT_PROTECTED] = candidate_merit[user, 1]
        for slot in range(k):
            position = slate[slot]
            item = candidates[b, position]
            out_items[b, slot] = item
            topic = item_topic[item]
            z = logits[position, 0] + drift[b, topic] - params[P_BOREDOM_WEIGHT] * boredom[b, topic]
            p_click = slot_bias[slot] * _sigmoid(z)
            out_p_click[b, slot] = p_click
            if forced[b, 0, slot] >= 0:
                clicked = forced[b, 0, slot] > 0
            else:
                clicked = splitmix_uniform(keys[b], steps[b], slot) < p_click
            out_click[b, slot] = clicked
            bought = False
            out_p_purchase[b, slot] = 0.0
            if clicked and params[P_HAS_PURCHASES] > 0:
                p_buy = _sigmoid(logits[position, 1] + params[P_PURCHASE_DRIFT] * drift[b, topic])
                out_p_purchase[b, slot] = p_buy
                if forced[b, 1, slot] >= 0:
                    bought = forced[b, 1, slot] > 0
                else:
                    bought = splitmix_uniform(keys[b], steps[b], k + slot) < p_buy
            out_purchase[b, slot] = bought
            n_clicks += clicked
            out_stats[b, S_PURCHASES] += bought
            out_stats[b, S_PROTECTED] += candidate_features[b, position, F_PROTECTED]
        # Repeats: slots whose topic this session has shown before (exposure before the step).
        out_stats[b, S_REPEAT_SHOWN] = 0.0
        out_stats[b, S_REPEAT_CLICKS] = 0.0
        for slot in range(k):
            if topic_exposure[b, item_topic[out_items[b, slot]]] > 0:
                out_stats[b, S_REPEAT_SHOWN] += 1.0
                out_stats[b, S_REPEAT_CLICKS] += out_click[b, slot]
        # Advance the session state: decay every topic, then add each slate topic's views and
        # clicks (the same float operations as dynamics.advance, without per-topic count arrays).
        for topic in range(n_topics):
            drift[b, topic] *= params[P_DRIFT_RETENTION]
            boredom[b, topic] *= params[P_BOREDOM_RETENTION]
            topic_exposure[b, topic] *= params[P_EXPOSURE_RETENTION]
        for slot in range(k):
            topic = item_topic[out_items[b, slot]]
            first, views, clicks = True, 0.0, 0.0
            for other in range(k):
                if item_topic[out_items[b, other]] == topic:
                    first = first and other >= slot
                    views += 1.0
                    clicks += out_click[b, other]
            if first:
                drift[b, topic] += params[P_DRIFT_PER_CLICK] * clicks
                added = params[P_BOREDOM_PER_VIEW] * views + params[P_BOREDOM_PER_CLICK] * clicks
                boredom[b, topic] += added * user_traits[user, 0]
                topic_exposure[b, topic] += views
        mean_boredom = 0.0
        for slot in range(k):
            mean_boredom += boredom[b, item_topic[out_items[b, slot]]]
        mean_boredom /= k
        logit = (
            params[P_LEAVE_BIAS]
            + params[P_LEAVE_PER_BOREDOM] * mean_boredom
            + params[P_LEAVE_IF_NO_CLICK] * (n_clicks == 0)
            + params[P_LEAVE_PER_CLICK] * n_clicks
        ) + user_traits[user, 1]
        if params[P_LEAVE_SESSION_SD] > 0.0:  # the session's own offset, fixed by its key
            logit += params[P_LEAVE_SESSION_SD] * session_normal(keys[b])
        out_p_leave[b] = _sigmoid(logit)
        out_leave[b] = splitmix_uniform(keys[b], steps[b], 2 * k) < out_p_leave[b]
        out_stats[b, S_CLICKS] = n_clicks
        # Agent-visible bookkeeping: clicked items join the history; topic exposure feature.
        for slot in range(k):
            if out_click[b, slot]:
                count = 0
                while count < length and history[b, count] >= 0:
                    count += 1
                if count == length:
                    for h in range(length - 1):
                        history[b, h] = history[b, h + 1]
                    count = length - 1
                history[b, count] = out_items[b, slot]
        for j in range(candidate_topics.shape[1]):
            candidate_features[b, j, F_TOPIC_EXPOSURE] = topic_exposure[b, candidate_topics[b, j]]


def _weighted_scores(
    features: np.ndarray,  # (B, N, F) float32
    weights: np.ndarray,  # (B, F) float32
    floor: float,
    scratch: np.ndarray,  # (B, 3, F) float64
    out: np.ndarray,  # (B, N) float64
) -> None:
    """``out[b] = sum_f weights[b, f] * z(features[b, :, f])``, each feature z-scored across the
    row's N candidates with its spread floored at ``floor`` (``envs.core.standardise``'s
    definition, in float64, in three passes over the row and no ``(B, N, F)`` temporaries): the
    ``weights`` action's scores."""
    batch, n, n_features = features.shape
    for b in prange(batch):
        mean, var, scale = scratch[b, 0], scratch[b, 1], scratch[b, 2]
        mean[:] = 0.0
        var[:] = 0.0
        for j in range(n):
            for f in range(n_features):
                mean[f] += features[b, j, f]
        for f in range(n_features):
            mean[f] /= n
        for j in range(n):
            for f in range(n_features):
                d = features[b, j, f] - mean[f]
                var[f] += d * d
        for f in range(n_features):
            scale[f] = weights[b, f] / max(np.sqrt(var[f] / n), floor)
        for j in range(n):
            total = 0.0
            for f in range(n_features):
                total += (features[b, j, f] - mean[f]) * scale[f]
            out[b, j] = total


weighted_scores_kernel = njit(cache=True)(_weighted_scores)
parallel_weighted_scores_kernel = njit(cache=True, parallel=True)(_weighted_scores)
""":func:`_weighted_scores`, one thread and over numba's threads."""


def _rank_batch(
    scores: np.ndarray,  # (B, N)
    topics: np.ndarray,  # (B, N)
    k: int,
    one_per_topic: np.ndarray,  # (B,) bool
    n_topics: int,
    out: np.ndarray,  # (B, K) int64 candidate positions
) -> None:
    """The slates the step kernel would show for ``scores`` (its ranking, one item per topic first
    where asked), without stepping: what a planner compares before it acts."""
    taken = np.zeros((scores.shape[0], scores.shape[1]), dtype=np.bool_)
    used = np.zeros((scores.shape[0], n_topics), dtype=np.bool_)
    for b in prange(scores.shape[0]):
        _rank(scores[b], topics[b], k, one_per_topic[b], taken[b], used[b], out[b])


rank_kernel = njit(cache=True)(_rank_batch)
parallel_rank_kernel = njit(cache=True, parallel=True)(_rank_batch)
""":func:`_rank_batch`, one thread and over numba's threads."""


step_kernel = njit(cache=True)(_step)
"""The compiled step, one thread."""
parallel_step_kernel = njit(cache=True, parallel=True)(_step)
"""The compiled step with users spread over numba's threads (faster for large batches, slower
than one thread for small ones: ``python -m benchmarks.env_speed`` measures both)."""
PARALLEL_MIN_BATCH = 512
"""Batches at least this large use :data:`parallel_step_kernel`."""


@njit(cache=True)
def protected_target(merit_total: float, merit_protected: float, target_share: float) -> float:
    """The protected group's target exposure share: ``target_share`` when fixed, else (NaN) the
    protected share of the merit (relevance offered), ``merit_protected / merit_total`` (0 when
    nothing was offered yet). The one definition of the merit-based target."""
    if np.isnan(target_share):
        return merit_protected / merit_total if merit_total > 0 else 0.0
    return target_share


@njit(cache=True)
def ledger_kernel(
    rows: np.ndarray,  # (B,) int64 ledger row of each user
    items: np.ndarray,  # (B, K) int64
    protected: np.ndarray,  # (M,) bool
    tail: np.ndarray,  # (M,) bool
    merit_total: np.ndarray,  # (B,) relevance offered
    merit_protected: np.ndarray,  # (B,) ... by protected candidates
    weights: np.ndarray,  # (K,) position weights
    target_share: float,  # fixed target, or NaN for merit-based
    provider_exposure: np.ndarray,  # (L, 2), updated
    provider_merit: np.ndarray,  # (L, 2), updated
    popularity_exposure: np.ndarray,  # (L, 2), updated
    item_exposure: np.ndarray,  # (L, M) float32, updated
    out_penalty: np.ndarray,  # (B,)
) -> None:
    """Fairness penalty of each step against the ledger's before-state, then record them all.

    ``penalty = (max(0, D_after) - max(0, D_before)) / sum(weights)`` with
    ``D = target * E_total - E_protected`` (see ``envs.fairness.ExposureLedger.record``).
    """
    batch, k = items.shape
    step_total = 0.0
    for slot in range(k):
        step_total += weights[slot]
    for b in range(batch):
        row = rows[b]
        step_protected = 0.0
        for slot in range(k):
            if protected[items[b, slot]]:
                step_protected += weights[slot]
        before_total = provider_exposure[row, 0] + provider_exposure[row, 1]
        before_protected = provider_exposure[row, 1]
        merit_sum = provider_merit[row, 0] + provider_merit[row, 1] + merit_total[b]
        target = protected_target(merit_sum, provider_merit[row, 1] + merit_protected[b], target_share)
        d_before = target * before_total - before_protected
        d_after = target * (before_total + step_total) - (before_protected + step_protected)
        out_penalty[b] = (max(d_after, 0.0) - max(d_before, 0.0)) / step_total
    for b in range(batch):
        row = rows[b]
        step_protected = 0.0
        step_tail = 0.0
        for slot in range(k):
            item = items[b, slot]
            if protected[item]:
                step_protected += weights[slot]
            if tail[item]:
                step_tail += weights[slot]
            item_exposure[row, item] += weights[slot]
        provider_exposure[row, 1] += step_protected
        provider_exposure[row, 0] += step_total - step_protected
        provider_merit[row, 1] += merit_protected[b]
        provider_merit[row, 0] += merit_total[b] - merit_protected[b]
        popularity_exposure[row, 1] += step_tail
        popularity_exposure[row, 0] += step_total - step_tail


@njit(cache=True)
def context_kernel(
    rows: np.ndarray,  # (B,) ledger rows
    provider_exposure: np.ndarray,  # (L, 2)
    provider_merit: np.ndarray,  # (L, 2)
    popularity_exposure: np.ndarray,  # (L, 2)
    target_share: float,  # NaN = merit-based
    tail_target: float,
    steps: np.ndarray,  # (B,)
    max_steps: int,
    session_clicks: np.ndarray,  # (B,)
    repeat_shown: np.ndarray,  # (B,) session's slots of already-shown topics
    repeat_clicks: np.ndarray,  # (B,) ... and their clicks
    history: np.ndarray,  # (B, H)
    item_topic: np.ndarray,  # (M,)
    scratch_counts: np.ndarray,  # (B, C) float64
    out_context: np.ndarray,  # (B, len(CONTEXT)) float32
    out_history_mask: np.ndarray,  # (B, H) int8
) -> None:
    """Fill the observation's ``context`` (``envs.config.CONTEXT``) and ``history_mask``."""
    n_topics = scratch_counts.shape[1]
    log_topics = np.log(max(n_topics, 2))
    for b in range(rows.shape[0]):
        row = rows[b]
        total = provider_exposure[row, 0] + provider_exposure[row, 1]
        share = provider_exposure[row, 1] / total if total > 0 else 0.0
        merit = provider_merit[row, 0] + provider_merit[row, 1]
        target = protected_target(merit, provider_merit[row, 1], target_share)
        popular = popularity_exposure[row, 0] + popularity_exposure[row, 1]
        tail_share = popularity_exposure[row, 1] / popular if popular > 0 else 0.0
        out_context[b, 0] = target - share
        out_context[b, 1] = tail_target - tail_share
        out_context[b, 2] = steps[b] / max_steps
        out_context[b, 3] = session_clicks[b] / max(steps[b], 1)
        scratch_counts[b] = 0.0
        n = 0
        for h in range(history.shape[1]):
            out_history_mask[b, h] = history[b, h] >= 0
            if history[b, h] >= 0:
                scratch_counts[b, item_topic[history[b, h]]] += 1.0
                n += 1
        entropy = 0.0
        if n >= 2:
            for c in range(n_topics):
                if scratch_counts[b, c] > 0:
                    p = scratch_counts[b, c] / n
                    entropy -= p * np.log(p)
        out_context[b, 4] = entropy / log_topics
        out_context[b, 5] = repeat_clicks[b] / repeat_shown[b] if repeat_shown[b] > 0 else 0.0


@njit(cache=True)
def finish_kernel(
    rows: np.ndarray,  # (B,) ledger rows
    items: np.ndarray,  # (B, K)
    protected: np.ndarray,  # (M,) bool
    tail: np.ndarray,  # (M,) bool
    stats: np.ndarray,  # (B, N_STATS) from the step kernel
    leave: np.ndarray,  # (B,) bool from the step kernel
    weights: np.ndarray,  # (K,) position weights
    target_share: float,  # NaN = merit-based
    provider_exposure: np.ndarray,  # (L, 2), updated
    provider_merit: np.ndarray,  # (L, 2), updated
    popularity_exposure: np.ndarray,  # (L, 2), updated
    item_exposure: np.ndarray,  # (L, M) float32, updated
    purchase_weight: float,
    fairness_lambda: float,
    max_steps: int,
    step_count: np.ndarray,  # (B,) updated (+1)
    session_clicks: np.ndarray,  # (B,) updated
    session_utility: np.ndarray,  # (B,) updated
    out_penalty: np.ndarray,  # (B,)
    out_reward: np.ndarray,  # (B,)
    out_terminated: np.ndarray,  # (B,) bool
    out_truncated: np.ndarray,  # (B,) bool
) -> bool:
    """Ledger, reward and episode flags after a step; returns whether any session ended."""
    ledger_kernel(
        rows, items, protected, tail, stats[:, S_MERIT_TOTAL], stats[:, S_MERIT_PROTECTED], weights, target_share,
        provider_exposure, provider_merit, popularity_exposure, item_exposure, out_penalty,
    )  # fmt: skip
    any_done = False
    for b in range(rows.shape[0]):
        engagement = stats[b, S_CLICKS] + purchase_weight * stats[b, S_PURCHASES]
        out_reward[b] = engagement - fairness_lambda * out_penalty[b]
        step_count[b] += 1
        out_terminated[b] = leave[b]
        out_truncated[b] = (step_count[b] >= max_steps) and not leave[b]
        session_clicks[b] += stats[b, S_CLICKS]
        session_utility[b] += engagement
        any_done = any_done or out_terminated[b] or out_truncated[b]
    return any_done


def _start(
    index: np.ndarray,  # (R,) batch slots to (re)start
    users: np.ndarray,  # (R,) the user of each new session
    keys: np.ndarray,  # (R,) uint64 session keys
    world_history: np.ndarray,  # (U, H)
    world_candidates: np.ndarray,  # (U, N)
    world_features: np.ndarray,  # (U, N, F - 1) static candidate features
    item_topic: np.ndarray,  # (M,)
    user: np.ndarray,  # (B,) updated
    key: np.ndarray,  # (B,) uint64, updated
    step_count: np.ndarray,  # (B,) updated
    session_clicks: np.ndarray,  # (B,) updated
    session_utility: np.ndarray,  # (B,) updated
    history: np.ndarray,  # (B, H) updated
    drift: np.ndarray,  # (B, C) updated
    boredom: np.ndarray,  # (B, C) updated
    topic_exposure: np.ndarray,  # (B, C) updated
    candidates: np.ndarray,  # (B, N) updated
    candidate_topics: np.ndarray,  # (B, N) updated
    candidate_features: np.ndarray,  # (B, N, F) updated
) -> None:
    """Start sessions of ``users`` in batch slots ``index``: copy each user's starting history
    and candidates from the world, zero the session state."""
    n_static = world_features.shape[2]
    for r in prange(index.shape[0]):  # slots in ``index`` are distinct
        b, u = index[r], users[r]
        user[b] = u
        key[b] = keys[r]
        step_count[b] = 0
        session_clicks[b] = 0.0
        session_utility[b] = 0.0
        history[b] = world_history[u]
        drift[b] = 0.0
        boredom[b] = 0.0
        topic_exposure[b] = 0.0
        for j in range(candidates.shape[1]):
            item = world_candidates[u, j]
            candidates[b, j] = item
            candidate_topics[b, j] = item_topic[item]
            for f in range(n_static):
                candidate_features[b, j, f] = world_features[u, j, f]
            candidate_features[b, j, F_TOPIC_EXPOSURE] = 0.0


start_kernel = njit(cache=True)(_start)
parallel_start_kernel = njit(cache=True, parallel=True)(_start)
""":func:`_start` over numba's threads (for :data:`PARALLEL_MIN_BATCH` users or more)."""


def _final_rows(done: np.ndarray, source: np.ndarray, target: np.ndarray) -> None:
    """``target[b] = source[b]`` where ``done[b]``, else 0, for 2-D arrays of one shape: gymnasium's
    final-observation layout written in one pass (no zero fill first, no temporaries)."""
    for b in prange(source.shape[0]):
        if done[b]:
            target[b] = source[b]
        else:
            target[b] = 0


final_rows = njit(cache=True)(_final_rows)
parallel_final_rows = njit(cache=True, parallel=True)(_final_rows)
