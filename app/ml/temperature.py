"""The adaptive temperature, in numpy alone: fitted by `calibration`, applied when serving.

Serving workers import this without scikit-learn or SciPy, so the arithmetic the
estimator and the fast path share lives here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LOG_T_LIMIT", "adaptive_temperature_logits", "temperature_features"]

# Bound on |log temperature|: keeps exp() finite for any input, far outside the
# fitted range (|log t| < 3 on both datasets).
LOG_T_LIMIT = 30.0


def temperature_features(logits: np.ndarray) -> np.ndarray:
    """Per-row inputs of the adaptive temperature: [1, top logit, top-1 minus top-2 logit]."""
    n, k = logits.shape
    if k == 1:
        top = logits[:, 0]
        margin = np.zeros(n)
    else:
        top2 = np.partition(logits, k - 2, axis=1)[:, k - 2 :]
        top = top2[:, 1]
        margin = top2[:, 1] - top2[:, 0]
    return np.column_stack([np.ones(n), top, margin])


def adaptive_temperature_logits(logits: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Scale each row of ``logits`` by ``exp(theta . features(row))``; argmax is unchanged.

    Shared by CalibratedLinearSVC and the fast path so both run the same arithmetic.
    """
    log_t = np.clip(temperature_features(logits) @ theta, -LOG_T_LIMIT, LOG_T_LIMIT)
    scaled: np.ndarray = logits * np.exp(log_t)[:, None]
    return scaled
