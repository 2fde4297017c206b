"""The long-lived parts of one server process, built once in the app's lifespan.

`Runtime` is frozen: a route or a test cannot swap one of its parts. Routes do
not see it either: `app/api/deps.py` hands each route the single service it
needs, built from these parts (tests replace a part through
`app.dependency_overrides`).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from pwdlib import PasswordHash
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.keys import Keyring
from app.core.metrics import Metrics
from app.core.security import build_secret_hasher
from app.db.database import Database, open_database
from app.services.bulk_jobs import BULK, BulkJobService
from app.services.datasets import UploadStore
from app.services.job_launcher import JobLauncher
from app.services.login_guard import LoginGuard
from app.services.prediction import PredictionService
from app.services.prediction_log import PredictionLog
from app.services.rate_limit import RateLimiter
from app.services.revocation import RevocationCache
from app.services.shadow import ShadowEvaluator
from app.services.tokens import TokenService
from app.services.training_jobs import TrainingJobService

# Expired bulk results are looked for at most this often per worker: a result
# outlives its retention by a minute at most, and each pass costs a few queries
# and a walk over recently failed jobs' folders.
BULK_PURGE_SECONDS = 60.0


class Interval:
    """Says when a periodic task is due: on the first call, then once per `seconds`."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._next = float("-inf")
        # Housekeeping runs on thread-pool threads: two ticks at once must not both run it.
        self._lock = threading.Lock()

    def due(self) -> bool:
        """True when the task should run now (and the next one is a period away)."""
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                return False
            self._next = now + self._seconds
            return True


@dataclass(frozen=True)
class Runtime:
    """Database, token machinery, caches, limiters and the serving model of one process."""

    settings: Settings
    database: Database
    metrics: Metrics
    hasher: PasswordHash
    # Verified against when a client id is unknown, so that answer takes as long.
    dummy_hash: str
    tokens: TokenService
    revocation: RevocationCache
    login_guard: LoginGuard
    predictions: PredictionService
    # Rows queued by the prediction routes, written by a thread started in the lifespan.
    prediction_log: PredictionLog
    rate_limiter: RateLimiter
    uploads: UploadStore
    # Starts this worker's training processes and watches them; stopped in close().
    launcher: JobLauncher
    # The same for bulk scoring processes.
    bulk_launcher: JobLauncher
    # This worker's part of the open shadow run, followed at each registry check.
    shadow: ShadowEvaluator
    # When this worker next deletes expired bulk jobs (reaping dead ones is one
    # query on the few open jobs, and runs at every tick).
    bulk_purge: Interval = field(default_factory=lambda: Interval(BULK_PURGE_SECONDS))

    @classmethod
    def build(cls, settings: Settings, metrics: Metrics) -> Runtime:
        """Connect (the schema must be current: see `make migrate`) and prepare every part."""
        database = open_database(settings.database_url, migrate=False)
        sessions = database.sessions
        hasher = build_secret_hasher()
        predictions = PredictionService(sessions, settings.model_dir, metrics)
        return cls(
            settings=settings,
            database=database,
            metrics=metrics,
            hasher=hasher,
            dummy_hash=hasher.hash(secrets.token_urlsafe(32)),
            tokens=TokenService(settings, Keyring.from_settings(settings)),
            revocation=RevocationCache(
                sessions, refresh_seconds=settings.revocation_refresh_seconds
            ),
            login_guard=LoginGuard(
                per_client=settings.auth_failure_limit,
                per_address=settings.auth_failure_limit_per_address,
                storage_uri=settings.redis_url or "memory://",
                max_concurrent_checks=settings.max_concurrent_secret_checks,
            ),
            predictions=predictions,
            prediction_log=PredictionLog(
                database.engine,
                metrics,
                fraction=settings.prediction_log_fraction,
                max_rows=settings.prediction_log_queue_rows,
            ),
            rate_limiter=RateLimiter(
                {
                    "predict": settings.rate_limit_predict,
                    "train": settings.rate_limit_train,
                    "admin": settings.rate_limit_admin,
                    # Not a scope: counted by the feedback route on top of `predict`.
                    "feedback": settings.rate_limit_feedback,
                },
                settings.redis_url,
            ),
            uploads=UploadStore(settings, sessions),
            launcher=JobLauncher(sessions, settings),
            bulk_launcher=JobLauncher(sessions, settings, BULK),
            shadow=ShadowEvaluator(sessions, database.engine, predictions, settings, metrics),
        )

    def session(self) -> Session:
        """A new session; use it in a `with` block."""
        return self.database.sessions()

    def housekeeping(self) -> None:
        """Periodic per-worker work: revocation snapshot, active model, the open shadow
        run, dead training and bulk jobs, expired bulk results (once a minute)."""
        self.revocation.refresh_if_due()
        self.predictions.sync()
        self.shadow.follow()
        with self.session() as session:
            TrainingJobService(session, self.settings).reap()
        with self.session() as session:
            bulk = BulkJobService(session, self.settings)
            bulk.reap()
            if self.bulk_purge.due():
                bulk.purge_expired()

    def close(self) -> None:
        """Release database connections and withdraw this worker's serving gauge."""
        self.predictions.close()
        # Both flush what is queued while the database is still open.
        self.shadow.close()
        self.prediction_log.close()
        # Before the engine goes: a watcher must not write to a closed database.
        self.launcher.close()
        self.bulk_launcher.close()
        self.database.dispose()
