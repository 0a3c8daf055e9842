"""Calibration of the fitted click model and the dynamics coefficients it implies.

The click logit ``scale * static + offset + view_coef * views + click_coef * clicks`` is fitted
jointly on the validation split (LBFGS), per candidate retention; the best one becomes the
simulator's drift and boredom (:func:`dynamics_from_calibration`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from simulators.data.steps import StepTable
from simulators.dynamics import DynamicsParams


@dataclass
class Calibration:
    """Click logit ``scale * static + offset + view_coef * views + click_coef * clicks``."""

    scale: float
    offset: float
    view_coef: float
    click_coef: float
    retention: float
    valid_nll: float


def fit_calibration(
    static: np.ndarray,
    theta: np.ndarray,
    views: np.ndarray,
    clicked: np.ndarray,
    steps: StepTable,
    retention: float,
) -> Calibration:
    """Maximum likelihood of the four calibration/dynamics parameters (LBFGS, full batch)."""
    shown = torch.from_numpy(steps.slot_mask)
    s, v, c = (torch.from_numpy(np.asarray(x, dtype=np.float64))[shown] for x in (static, views, clicked))
    t = torch.from_numpy(np.broadcast_to(theta[: steps.items.shape[1]], steps.items.shape).copy())[shown]
    y = torch.from_numpy(steps.clicks.astype(np.float64))[shown]
    params = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([params], max_iter=100, line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        p = (t * torch.sigmoid(params[0] * s + params[1] + params[2] * v + params[3] * c)).clamp(
            1e-7, 1 - 1e-7
        )
        return -(y * torch.log(p) + (1 - y) * torch.log1p(-p)).mean()

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        final = float(objective())
    a, b, gv, gc = (float(x) for x in params.detach())
    return Calibration(a, b, gv, gc, retention, final)


def dynamics_from_calibration(cal: Calibration, leave: dict[str, float]) -> DynamicsParams:
    """Map fitted coefficients onto :class:`DynamicsParams` (one retention for both states).

    ``leave`` may carry ``boredom_per_click``: boredom from clicks that the leave hazard sees.
    Its effect on clicks is then added back to the drift, so the click model is unchanged
    (both states share the retention, so the two terms cancel exactly in the click logit).
    """
    leave = dict(leave)
    per_click = leave.pop("boredom_per_click", 0.0)
    return DynamicsParams(
        drift_per_click=max(cal.click_coef, 0.0) + per_click,
        drift_retention=cal.retention,
        boredom_per_view=max(-cal.view_coef, 0.0),
        boredom_per_click=max(-cal.click_coef, 0.0) + per_click,
        boredom_retention=cal.retention,
        boredom_weight=1.0,
        **leave,
    )
