"""simulators.core.metrics: AUC, calibration, KS distance, Gini and clustered standard errors
against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.core.metrics import (
    clustered_standard_error,
    expected_calibration_error,
    gini,
    ks_distance,
    roc_auc,
)


def test_metrics_against_known_answers() -> None:
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert np.isnan(roc_auc(np.array([1, 1]), np.array([0.1, 0.2])))
    assert expected_calibration_error(np.array([0, 1] * 50), np.full(100, 0.5)) == pytest.approx(0.0)
    assert ks_distance(np.arange(10), np.arange(10)) == 0.0
    assert ks_distance(np.zeros(5), np.ones(5)) == 1.0
    assert gini(np.ones(10)) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 1.0])) == pytest.approx(0.75)


def test_clustered_standard_error() -> None:
    x = np.random.default_rng(0).normal(size=50)
    iid = x.std(ddof=1) / np.sqrt(len(x))
    assert clustered_standard_error(x, np.arange(50)) == pytest.approx(iid)
    # Each value copied 4 times into its own cluster carries no more information than once.
    assert clustered_standard_error(np.repeat(x, 4), np.repeat(np.arange(50), 4)) == pytest.approx(iid)
    # The same 200 rows read as independent would claim half that error.
    assert np.repeat(x, 4).std(ddof=1) / np.sqrt(200) < 0.51 * iid
    assert np.isnan(clustered_standard_error(x, np.zeros(50)))
    with pytest.raises(ValueError, match="differ in length"):
        clustered_standard_error(x, np.arange(49))
