"""Out-of-scope awareness: how familiar a name's words are, and what that does to its score.

A model can only be right about a product of one of its categories. A name whose
words the model has never seen (a shirt put to a grocery model) gets, from the
classifier alone, a confident-looking answer: the classifier spreads 100 % over
categories that cannot be right. `ScopeModel` adds the missing factor.

The statistic is the name's *word coverage*: the share of its word n-grams
(those the word vectorizers count) that the vocabulary holds. At fit time the
same statistic is measured out of fold on the training names (each fold against
the vocabulary the other folds would have built), which is what coverage looks
like for unseen names of the model's own categories. For a new name,
``p = (1 + #{reference coverages <= its coverage}) / (n + 1)`` is a conformal
p-value: for names like the training ones it is uniform, so at most ``alpha``
of them fall below ``alpha`` (false "out of scope"), while names from elsewhere
fall there far more often. The served probabilities are multiplied by
``min(1, p / alpha)``: untouched for the (1 - alpha) most familiar in-scope
names, lowered in proportion to how unusual the rest are. Rows then sum to the
factor, not to 1: the remainder is the chance that no category is right.

numpy alone: serving workers import this without scikit-learn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DEFAULT_SCOPE_ALPHA", "ScopeModel", "coverage", "in_scope"]

# Share of in-scope names the test may call out of scope: a trade between
# catching unfamiliar products and lowering the score of unusual in-scope ones
# (measured in docs/model.md).
DEFAULT_SCOPE_ALPHA = 0.05


def coverage(covered: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Share of each name's word n-grams that the vocabulary holds (0 for none at all)."""
    covered = np.asarray(covered, dtype=np.float64)
    total = np.asarray(total, dtype=np.float64)
    share = np.zeros_like(covered)
    np.divide(covered, total, out=share, where=total > 0)
    return share


@dataclass(frozen=True, eq=False)
class ScopeModel:
    """The conformal word-coverage test, as plain numbers.

    Only the lowest reference coverages matter: once a name's coverage reaches
    the ``alpha`` quantile its factor is 1, so `tail` keeps just those.
    """

    alpha: float
    n_reference: int
    tail: np.ndarray  # the smallest reference coverages, ascending

    @classmethod
    def fit(cls, reference: np.ndarray, alpha: float) -> ScopeModel:
        """The test for out-of-fold coverages `reference` at level `alpha` (0 < alpha < 1)."""
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"scope alpha must be in (0, 1), got {alpha}")
        values = np.sort(np.asarray(reference, dtype=np.float64))
        if values.size == 0:
            raise ValueError("the scope test needs at least one reference coverage")
        # count >= alpha * (n + 1) - 1 already gives factor 1; larger counts need no values.
        keep = max(0, math.ceil(alpha * (values.size + 1) - 1))
        return cls(alpha=float(alpha), n_reference=int(values.size), tail=values[:keep].copy())

    def factor(self, coverage_: np.ndarray) -> np.ndarray:
        """``min(1, p / alpha)`` per name: what its class probabilities are multiplied by."""
        count = np.searchsorted(self.tail, coverage_, side="right")
        factor: np.ndarray = np.minimum(1.0, (count + 1.0) / ((self.n_reference + 1) * self.alpha))
        return factor

    def spec(self) -> dict[str, Any]:
        """JSON-able description (`from_spec` reads it back)."""
        return {"alpha": self.alpha, "n_reference": self.n_reference, "tail": self.tail.tolist()}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> ScopeModel:
        """Read `spec` back, checking its shape; ValueError otherwise."""
        alpha = float(spec["alpha"])
        n_reference = int(spec["n_reference"])
        tail = np.asarray(spec["tail"], dtype=np.float64)
        if not (
            0.0 < alpha < 1.0
            and n_reference >= 1
            and tail.ndim == 1
            and tail.size <= n_reference
            and np.all(np.isfinite(tail))
            and np.all(np.diff(tail) >= 0)
        ):
            raise ValueError("the scope test is mis-shaped")
        return cls(alpha=alpha, n_reference=n_reference, tail=tail)


def in_scope(factor: np.ndarray) -> np.ndarray:
    """True where the name passed the test (its factor is 1)."""
    flags: np.ndarray = np.asarray(factor) >= 1.0
    return flags
