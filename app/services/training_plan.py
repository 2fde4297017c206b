"""What a training job will do: a validated plan, its confined data path, its params and rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.orm import Session

from app.core.errors import BadRequest, NotFound, Unprocessable
from app.crud import feedback as feedback_crud
from app.crud import model_version as model_crud
from app.ml.algorithms import (
    ALGORITHMS,
    DEFAULT_TEST_SIZE,
    MAX_GRID_CANDIDATES,
    TUNABLE_PARAMS,
    ParamError,
    check_param,
)
from app.ml.dataset import Dataset, DatasetError, merge, read_csv
from app.services.models import ModelRegistry


@dataclass(frozen=True)
class TrainingPlan:
    """Everything a job will do, validated before the job exists."""

    data_file: str | None
    data_path: str | None
    algorithm: str
    params: dict[str, Any]
    grid: dict[str, list[Any]]
    include_base_data: bool
    include_feedback: bool
    activate: bool
    test_size: float = DEFAULT_TEST_SIZE
    # Refit on every row after the hold-out evaluation (the served model sees all data).
    refit: bool = True

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> TrainingPlan:
        """Rebuild a plan from a job's stored options."""
        return cls(**options)


def resolve_data_path(data_dir: Path, raw: str) -> tuple[Path, str]:
    """Confine a client-supplied path to `data_dir`: (absolute file, path shown back).

    Absolute paths, `..`, backslashes and symlinks that lead out are refused (400);
    a leading `data/` is accepted as the original README writes it.
    """
    text = raw.strip()
    if not text or "\x00" in text or "\\" in text:
        raise BadRequest("new_data_path must be a relative path inside the data directory")
    path = PurePosixPath(text)
    if not path.parts or path.is_absolute() or ".." in path.parts:
        raise BadRequest(
            f"new_data_path must be relative to the data directory, without '..' (got {raw!r})"
        )
    root = data_dir.resolve()
    if path.parts[0] == "data" and len(path.parts) > 1 and not (root / path).exists():
        path = PurePosixPath(*path.parts[1:])
    resolved = (root / path).resolve()
    if not resolved.is_relative_to(root):
        raise BadRequest(f"new_data_path {raw!r} leads outside the data directory")
    if not resolved.exists():
        raise NotFound(f"data file {str(path)!r} does not exist in the data directory")
    if not resolved.is_file():
        raise BadRequest(f"data path {str(path)!r} is not a file")
    return resolved, str(path)


Grid = dict[str, list[Any]]


def split_params(algorithm: str, params: dict[str, Any] | None) -> tuple[dict[str, Any], Grid]:
    """Separate fixed values from lists to search, each checked against the allow-list.

    Only the names in `TUNABLE_PARAMS[algorithm]` pass, each value (and every grid
    candidate) of its type and inside its range; anything else is a 422 naming the
    parameter and the allowed names. An n-gram range is itself a list of two ints,
    so for those a list of lists is the grid.
    """
    if algorithm not in ALGORITHMS:
        choices = ", ".join(ALGORITHMS)
        raise Unprocessable(f"unknown algorithm {algorithm!r}; choose one of {choices}")
    allowed = TUNABLE_PARAMS[algorithm]
    fixed: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    try:
        for name, value in (params or {}).items():
            spec = allowed.get(name)
            if spec is not None and spec.kind == "ngram":
                is_grid = isinstance(value, list) and all(isinstance(v, list) for v in value)
            else:
                is_grid = isinstance(value, list)
            if not is_grid:
                fixed[name] = check_param(algorithm, name, value)
                continue
            if not value:
                raise ParamError(f"{name!r} has an empty list of candidates")
            grid[name] = [check_param(algorithm, name, v) for v in value]
    except ParamError as exc:
        raise Unprocessable(f"params: {exc}") from None
    candidates = 1
    for values in grid.values():
        candidates *= len(values)
    if candidates > MAX_GRID_CANDIDATES:
        raise Unprocessable(
            f"params: the grid has {candidates} combinations; at most {MAX_GRID_CANDIDATES} allowed"
        )
    return fixed, grid


def json_value(value: Any) -> Any:
    """A parameter value as a job's stored options hold it (JSON has no tuples)."""
    return list(value) if isinstance(value, tuple) else value


def assemble_dataset(
    session: Session, model_dir: Path, plan: TrainingPlan
) -> tuple[Dataset, str | None]:
    """The rows a plan trains on (base, then new file, then feedback) and the base version."""
    parts: list[Dataset] = []
    base_version: str | None = None
    if plan.include_base_data:
        active = model_crud.get_active(session)
        if active is not None:
            parts.append(ModelRegistry(session, model_dir).training_data(active))
            base_version = active.version
    if plan.data_file is not None:
        parts.append(read_csv(Path(plan.data_file), source=plan.data_path or plan.data_file))
    if plan.include_feedback:
        rows = feedback_crud.list_training_feedback(session)
        if rows:
            parts.append(
                Dataset(
                    texts=[r.product_name for r in rows],
                    labels=[r.category for r in rows],
                    sources=[{"source": "feedback", "rows": len(rows), "used": len(rows)}],
                )
            )
    if not parts:
        raise DatasetError("there is nothing to train on: no data file, base data or feedback")
    return merge(*parts), base_version
