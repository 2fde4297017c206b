"""Uploaded training CSVs: validated, then stored under the data directory with a new name."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.core.errors import Unprocessable
from app.ml.dataset import DatasetError, atomic_write_bytes, parse_csv
from app.services.training import DEFAULT_TEST_SIZE

UPLOAD_FOLDER = "uploads"


@dataclass(frozen=True)
class StoredDataset:
    """Where an upload went and what it holds."""

    data_path: str
    rows: int
    class_counts: dict[str, int]
    dropped_rows: int
    size_bytes: int
    sha256: str


def store_upload(data_dir: Path, data: bytes, filename: str | None) -> StoredDataset:
    """Validate a CSV as a training set on its own and store it; 422 naming the problem."""
    label = filename or "the upload"
    try:
        dataset = parse_csv(data, label)
        dataset.validate_for_training(DEFAULT_TEST_SIZE)
    except DatasetError as exc:
        raise Unprocessable(str(exc)) from None
    # A generated name: the client's file name is never used as a path.
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    relative = f"{UPLOAD_FOLDER}/{stamp}-{secrets.token_hex(4)}.csv"
    atomic_write_bytes(data_dir / relative, data)
    return StoredDataset(
        data_path=relative,
        rows=len(dataset),
        class_counts=dataset.class_counts,
        dropped_rows=dataset.dropped_rows,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
