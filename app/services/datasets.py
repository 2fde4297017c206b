"""Uploaded training CSVs: checked, stored per client under the data directory, and expired."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.errors import QuotaExceeded, Unprocessable
from app.core.text import validate_category_name
from app.crud import training_job as job_crud
from app.ml.dataset import DatasetError, atomic_write_bytes, parse_csv
from app.services.audit import AuditAction, AuditTrail

logger = logging.getLogger(__name__)

UPLOAD_FOLDER = "uploads"
# One housekeeping pass deletes at most this many files; the next pass continues.
MAX_DELETIONS_PER_PASS = 1000
_LOCK_FILE = ".lock"


@dataclass(frozen=True)
class StoredDataset:
    """Where an upload went and what it holds."""

    data_path: str
    rows: int
    class_counts: dict[str, int]
    dropped_rows: int
    size_bytes: int
    sha256: str

    @property
    def categories(self) -> int:
        """How many distinct categories the upload holds."""
        return len(self.class_counts)


def client_folder(client_id: str) -> str:
    """The upload folder of a client: a hash, so an id never becomes a path."""
    return hashlib.sha256(b"garoupa-uploads\x00" + client_id.encode()).hexdigest()[:16]


def check_upload(data: bytes, label: str) -> tuple[int, dict[str, int], int]:
    """Structural checks only: (rows, rows per category, dropped rows); 422 naming the problem.

    An upload is a file being stored, often one increment of a larger set; whether
    every category has enough rows is decided on the combined data at POST /training/.
    """
    try:
        dataset = parse_csv(data, label)
    except DatasetError as exc:
        raise Unprocessable(str(exc)) from None
    counts = dataset.class_counts
    # Categories become class names, API answers and metric labels: the same rules
    # as a category a client names in feedback.
    for category in counts:
        try:
            validate_category_name(category)
        except ValueError as exc:
            raise Unprocessable(f"{label}: category {category[:40]!r} is refused: {exc}") from None
    if len(counts) < 2:
        only = next(iter(counts))
        raise Unprocessable(f"{label}: the data needs at least 2 categories; found only {only!r}")
    return len(dataset), counts, dataset.dropped_rows


class UploadStore:
    """Per-client upload folders under DATA_DIR/uploads, with a quota and a retention period."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._root = settings.data_dir / UPLOAD_FOLDER
        self._data_dir = settings.data_dir
        self._quota_bytes = settings.upload_quota_bytes
        self._quota_files = settings.upload_quota_files
        self._retention_seconds = settings.upload_retention_days * 86400
        self._sessions = sessions
        self._clock = clock

    def store(self, client_id: str, data: bytes, filename: str | None) -> StoredDataset:
        """Check a CSV and store it under a generated name in the client's folder."""
        label = filename or "the upload"
        rows, counts, dropped = check_upload(data, label)
        folder = client_folder(client_id)
        directory = self._root / folder
        directory.mkdir(parents=True, exist_ok=True)
        # One upload at a time per client, across workers, so two cannot both fit
        # in the last free space of the quota.
        with _locked(directory / _LOCK_FILE):
            self.purge_expired(directory)
            used, files = _usage(directory)
            if files + 1 > self._quota_files or used + len(data) > self._quota_bytes:
                raise QuotaExceeded(
                    f"upload quota exceeded: this client stores {files} files, {used} bytes; "
                    f"the limits are {self._quota_files} files and {self._quota_bytes} bytes "
                    f"(this upload is {len(data)} bytes). Uploads are deleted "
                    f"{self._retention_seconds / 86400:g} days after they are stored."
                )
            # A generated name: the client's file name is never used as a path.
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
            relative = f"{UPLOAD_FOLDER}/{folder}/{stamp}-{secrets.token_hex(8)}.csv"
            atomic_write_bytes(self._data_dir / relative, data)
        logger.info("dataset uploaded", extra={"data_path": relative, "size_bytes": len(data)})
        return StoredDataset(
            data_path=relative,
            rows=rows,
            class_counts=counts,
            dropped_rows=dropped,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )

    def purge_expired(self, directory: Path | None = None) -> list[Path]:
        """Delete uploads older than the retention period (one folder, or all); bounded.

        A file that the open training job reads is kept whatever its age.
        """
        cutoff = self._clock() - self._retention_seconds
        expired = []
        for path in self._candidates(directory):
            try:
                if path.stat().st_mtime < cutoff:
                    expired.append(path)
            except FileNotFoundError:
                continue
            if len(expired) >= MAX_DELETIONS_PER_PASS:
                break
        if not expired:
            return []
        in_use = self._files_in_use()
        deleted = []
        for path in expired:
            if path.resolve() in in_use:
                continue
            path.unlink(missing_ok=True)
            deleted.append(path)
        if deleted:
            logger.info("expired uploads deleted", extra={"count": len(deleted)})
        return deleted

    def _candidates(self, directory: Path | None) -> Iterator[Path]:
        folders = [directory] if directory is not None else [self._root]
        if directory is None and self._root.is_dir():
            folders += [p for p in self._root.iterdir() if p.is_dir() and not p.is_symlink()]
        for folder in folders:
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                # Uploads only: never a lock, a temporary file or anything a symlink reaches.
                if entry.name.endswith(".csv") and entry.is_file(follow_symlinks=False):
                    yield Path(entry.path)

    def _files_in_use(self) -> set[Path]:
        with self._sessions() as session:
            job = job_crud.get_open_job(session)
        if job is None:
            return set()
        in_use = set()
        data_file = job.options.get("data_file")
        if isinstance(data_file, str):
            in_use.add(Path(data_file).resolve())
        if job.data_path:
            in_use.add((self._data_dir / job.data_path).resolve())
        return in_use


def _usage(directory: Path) -> tuple[int, int]:
    used = files = 0
    for entry in os.scandir(directory):
        if entry.name.endswith(".csv") and entry.is_file(follow_symlinks=False):
            used += entry.stat(follow_symlinks=False).st_size
            files += 1
    return used, files


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def store_audited(
    uploads: UploadStore, audit: AuditTrail, client_id: str, data: bytes, filename: str | None
) -> StoredDataset:
    """Store an upload and record it in the audit trail as `dataset.upload` (the API's
    and the console's uploads alike; blocking, so callers run it off the event loop)."""
    with audit.recording(
        actor=client_id, action=AuditAction.dataset_upload, refusals=(QuotaExceeded,)
    ) as event:
        # The client's own name for the file, as a hint for people reading the trail.
        event.detail.update(filename=(filename or "")[:200], size_bytes=len(data))
        stored = uploads.store(client_id, data, filename)
        event.target = stored.data_path
        event.detail.update(rows=stored.rows, sha256=stored.sha256)
    return stored
