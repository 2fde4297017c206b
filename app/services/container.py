"""Builds the long-lived parts of the service once per process (in the app's lifespan)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from pwdlib import PasswordHash
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.security import build_secret_hasher
from app.db.migrations import upgrade_database
from app.db.session import create_db_engine, create_session_factory
from app.services.clients import ClientService
from app.services.job_launcher import JobLauncher
from app.services.login_guard import LoginGuard
from app.services.models import ModelRegistry
from app.services.prediction import PredictionService
from app.services.rate_limit import RateLimiter
from app.services.revocation import RevocationCache
from app.services.tokens import Keyring, TokenService
from app.services.training_jobs import TrainingJobService


@dataclass
class ServiceContainer:
    """Engine, hasher, keys and caches shared by every request of one process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    hasher: PasswordHash
    dummy_hash: str
    tokens: TokenService
    revocation: RevocationCache
    login_guard: LoginGuard
    predictions: PredictionService
    rate_limiter: RateLimiter
    # Starts this worker's training processes and watches them; stopped in close().
    launcher: JobLauncher = field(init=False)

    def __post_init__(self) -> None:
        self.launcher = JobLauncher(self.sessions, self.settings)

    @classmethod
    def build(cls, settings: Settings, *, migrate: bool = True) -> ServiceContainer:
        """Connect, migrate the schema and prepare the token machinery."""
        engine = create_db_engine(settings.database_url)
        if migrate:
            upgrade_database(engine)
        sessions = create_session_factory(engine)
        hasher = build_secret_hasher()
        revocation = RevocationCache(sessions, refresh_seconds=settings.revocation_refresh_seconds)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            hasher=hasher,
            dummy_hash=hasher.hash(secrets.token_urlsafe(32)),
            tokens=TokenService(settings, Keyring.from_settings(settings)),
            revocation=revocation,
            login_guard=LoginGuard(
                per_client=settings.auth_failure_limit,
                per_address=settings.auth_failure_limit_per_address,
                storage_uri=settings.redis_url or "memory://",
                max_concurrent_checks=settings.max_concurrent_secret_checks,
            ),
            predictions=PredictionService(sessions, settings.model_dir),
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
        )

    def client_service(self, session: Session) -> ClientService:
        """A ClientService bound to `session`."""
        return ClientService(session, self.hasher, self.dummy_hash)

    def model_registry(self, session: Session) -> ModelRegistry:
        """A ModelRegistry bound to `session`."""
        return ModelRegistry(session, self.settings.model_dir)

    def jobs(self, session: Session) -> TrainingJobService:
        """A TrainingJobService bound to `session`."""
        return TrainingJobService(session, self.settings)

    def launch(self, job_id: str) -> None:
        """Start a created job in its own process."""
        self.launcher.launch(job_id)

    def housekeeping(self) -> None:
        """Periodic per-worker work: revocation snapshot, active model, dead training jobs."""
        self.revocation.refresh_if_due()
        self.predictions.sync()
        with self.sessions() as session:
            self.jobs(session).reap()

    def close(self) -> None:
        """Release database connections and withdraw this worker's serving gauge."""
        self.predictions.close()
        # Before the engine goes: a watcher must not write to a closed database.
        self.launcher.close()
        self.engine.dispose()
