"""Which algorithms exist and which hyper-parameters a client may set on each.

Plain Python with no scientific imports, so the request schemas (and anything
else that only names or checks an algorithm) load without scikit-learn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ALGORITHMS",
    "CALIBRATION_METHODS",
    "DEFAULT_ALGORITHM",
    "DEFAULT_TEST_SIZE",
    "MAX_GRID_CANDIDATES",
    "TUNABLE_PARAMS",
    "ParamError",
    "Tunable",
    "check_param",
    "describe_tunable_params",
]

DEFAULT_ALGORITHM = "linear_svc_oof_calibrated"

ALGORITHMS: tuple[str, ...] = (
    DEFAULT_ALGORITHM,
    "linear_svc_calibrated",
    "logistic_regression",
    "sgd_log_loss",
)

# Share of a dataset held out for evaluation unless a request says otherwise.
DEFAULT_TEST_SIZE = 0.2
# Largest parameter grid one training job may search (each candidate is a full fit per fold).
MAX_GRID_CANDIDATES = 60

# The probability maps CalibratedLinearSVC can fit on its out-of-fold scores.
CALIBRATION_METHODS: tuple[str, ...] = ("temperature", "vector", "matrix", "adaptive")


class ParamError(ValueError):
    """A hyper-parameter name or value outside the allow-list; the message says which."""


@dataclass(frozen=True)
class Tunable:
    """One hyper-parameter a client may set: its kind and inclusive bounds.

    kinds: ``float`` (an int or float, never a bool), ``int`` (an int, never a
    bool), ``count_or_share`` (an int
    count in [low, high] or a float share in (0, share_high]), ``ngram`` (two ints
    ``[lo, hi]`` with low <= lo <= hi <= high), ``choice`` (one of ``choices``,
    compared by type and value) and ``bool``.
    """

    kind: Literal["float", "int", "count_or_share", "ngram", "choice", "bool"]
    low: float = 0
    high: float = 0
    share_high: float = 0
    choices: tuple[str | None, ...] = ()

    def check(self, value: Any) -> Any:
        """The value as the pipeline takes it, or ParamError saying what is allowed."""
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
        elif self.kind == "choice":
            for choice in self.choices:
                if value is choice or (isinstance(value, str) and value == choice):
                    return value
        elif self.kind == "ngram":
            if (
                isinstance(value, list | tuple)
                and len(value) == 2
                and all(_is_int(v) for v in value)
                and self.low <= value[0] <= value[1] <= self.high
            ):
                return (int(value[0]), int(value[1]))
        elif self.kind == "int":
            if _is_int(value) and self.low <= value <= self.high:
                return int(value)
        elif self.kind == "count_or_share":
            if _is_int(value) and self.low <= value <= self.high:
                return int(value)
            if isinstance(value, float) and math.isfinite(value) and 0 < value <= self.share_high:
                return value
        elif _is_number(value) and self.low <= value <= self.high:
            return float(value)
        raise ParamError(f"{value!r} is not allowed; expected {self.describe()}")

    def describe(self) -> str:
        """What the parameter accepts, in a few words."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return " or ".join("null" if c is None else f'"{c}"' for c in self.choices)
        if self.kind == "ngram":
            return f"[lo, hi] integers with {self.low:g} <= lo <= hi <= {self.high:g}"
        if self.kind == "int":
            return f"an integer from {int(self.low):,} to {int(self.high):,}"
        if self.kind == "count_or_share":
            return (
                f"an integer from {self.low:g} to {self.high:g} (rows) or a float in "
                f"(0, {self.share_high:g}] (share of rows)"
            )
        return f"a number from {self.low:g} to {self.high:g}"


def _is_int(value: Any) -> bool:
    # bool is an int subclass in Python; true/false must not pass as 1/0.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_int(value)


_CLASS_WEIGHT = Tunable("choice", choices=(None, "balanced"))
_C = Tunable("float", low=1e-3, high=1e3)
_FEATURE_PARAMS: dict[str, Tunable] = {
    "features__word__ngram_range": Tunable("ngram", low=1, high=3),
    "features__char__ngram_range": Tunable("ngram", low=1, high=6),
    "features__word__min_df": Tunable("count_or_share", low=1, high=100, share_high=0.5),
    "features__char__min_df": Tunable("count_or_share", low=1, high=100, share_high=0.5),
    "features__word__max_df": Tunable("float", low=0.5, high=1.0),
    "features__char__max_df": Tunable("float", low=0.5, high=1.0),
    "features__word__sublinear_tf": Tunable("bool"),
    "features__char__sublinear_tf": Tunable("bool"),
    # The vocabulary cap: what bounds a large catalog's weights (categories x
    # features x 8 bytes per fit) and its memory.
    "features__word__max_features": Tunable("int", low=1_000, high=10_000_000),
    "features__char__max_features": Tunable("int", low=1_000, high=10_000_000),
}

# The out-of-scope test's level (app/ml/scope.py); 0 turns it off.
_SCOPE_PARAMS: dict[str, Tunable] = {"scope_alpha": Tunable("float", low=0.0, high=0.25)}

# The allow-list of `params` names per algorithm: nothing outside it reaches set_params.
TUNABLE_PARAMS: dict[str, dict[str, Tunable]] = {
    DEFAULT_ALGORITHM: {
        **_FEATURE_PARAMS,
        **_SCOPE_PARAMS,
        "clf__C": _C,
        "clf__class_weight": _CLASS_WEIGHT,
        "clf__calibration": Tunable("choice", choices=CALIBRATION_METHODS),
    },
    "linear_svc_calibrated": {
        **_FEATURE_PARAMS,
        **_SCOPE_PARAMS,
        "clf__estimator__C": _C,
        "clf__estimator__class_weight": _CLASS_WEIGHT,
        "clf__method": Tunable("choice", choices=("sigmoid", "isotonic")),
    },
    "logistic_regression": {
        **_FEATURE_PARAMS,
        **_SCOPE_PARAMS,
        "clf__C": _C,
        "clf__class_weight": _CLASS_WEIGHT,
    },
    "sgd_log_loss": {
        **_FEATURE_PARAMS,
        **_SCOPE_PARAMS,
        "clf__alpha": Tunable("float", low=1e-7, high=1e-2),
        "clf__class_weight": _CLASS_WEIGHT,
    },
}


def check_param(algorithm: str, name: str, value: Any) -> Any:
    """Validate one `params` value (or grid candidate) against the allow-list."""
    allowed = TUNABLE_PARAMS.get(algorithm)
    if allowed is None:
        raise ParamError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    spec = allowed.get(name)
    if spec is None:
        raise ParamError(
            f"{name!r} cannot be set for {algorithm}; allowed names: {', '.join(allowed)}"
        )
    try:
        return spec.check(value)
    except ParamError as exc:
        raise ParamError(f"{name!r}: {exc}") from None


def describe_tunable_params() -> str:
    """The allow-list as Markdown, for the API description of `params`."""
    lines = []
    for algorithm, allowed in TUNABLE_PARAMS.items():
        names = ", ".join(f"`{name}` ({spec.describe()})" for name, spec in allowed.items())
        lines.append(f"- `{algorithm}`: {names}")
    return "\n".join(lines)
