"""Settings: every knob the service has, read from the environment or `.env`."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Literal

import limits
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# The value `.env.example` ships; accepting it in production would mean every
# deployment that copied the example signs tokens with a public key.
EXAMPLE_SECRET_KEY = "change-me-to-a-random-string-of-at-least-32-bytes"
MIN_SECRET_KEY_BYTES = 32


class Environment(StrEnum):
    """Deployment kind: development tolerates missing secrets, production does not."""

    development = "development"
    production = "production"


class ConfigurationError(SystemExit):
    """Settings that make starting unsafe or impossible.

    A SystemExit so that an uncaught one ends the process with its one-line
    reason instead of a traceback, which is what an operator should see.
    """


def all_cpus_but_one() -> int:
    """The CPUs this process may run on, less one left to the web workers; 1 to 256."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:
        # No CPU affinity on macOS.
        available = os.cpu_count() or 1
    return max(1, min(256, available - 1))


class Settings(BaseSettings):
    """Service configuration; `.env.example` lists every field with its default."""

    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", frozen=True
    )

    environment: Environment = Environment.development
    secret_key: str | None = None
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'garoupa.db'}"

    access_token_expire_minutes: int = Field(default=30, ge=1, le=24 * 60)
    jwt_issuer: str = "http://127.0.0.1:8000"
    jwt_audience: str = "garoupa-api"
    # HS256 signs with SECRET_KEY (zero configuration). RS256 and EdDSA sign with
    # the private key in JWT_PRIVATE_KEY_FILE and publish the public half at
    # /.well-known/jwks.json, so other services can verify tokens without a secret.
    jwt_algorithm: Literal["HS256", "RS256", "EdDSA"] = "HS256"
    jwt_private_key_file: Path | None = None
    # Comma-separated PEM public keys of retired signing keys, still accepted (and
    # published) until the tokens they signed have expired.
    jwt_previous_public_key_files: str = ""

    data_dir: Path = PROJECT_ROOT / "data"
    model_dir: Path = PROJECT_ROOT / "ml_model_artifacts"
    # Precision of the weights a newly trained version's stored scorer keeps.
    # float32 halves the memory every machine maps for the weights; a version is
    # stored so only when no training or hold-out row changes category, and its
    # probabilities stay within 1e-5 of the pipeline's (1e-9 with float64).
    scorer_precision: Literal["float64", "float32"] = "float64"

    # A prediction scored below this, or out of scope, carries needs_review=true.
    # Unset: each version's own threshold, chosen on its hold-out as the lowest
    # score at which 95 % of names are right (GET /models/{version} shows it).
    review_threshold: float | None = Field(default=None, ge=0, le=1)

    # Which predictions are recorded in the prediction log: `all`, `off`, or
    # `sample:<fraction>` (that share of requests, each with all of its names).
    prediction_log: str = "all"
    # Logged predictions older than this are deleted in the background.
    prediction_log_retention_days: float = Field(default=30, gt=0, le=3650)
    # Rows a worker holds while the database is slow or down; past this, new rows
    # are dropped and counted (garoupa_prediction_log_dropped_total), so a stalled
    # database never blocks or bloats a worker.
    prediction_log_queue_rows: int = Field(default=100_000, ge=1_000, le=10_000_000)

    # A console session (people, at /console) ends after this many minutes unused,
    # and this many hours after sign-in whatever its use.
    console_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    console_session_hours: int = Field(default=12, ge=1, le=7 * 24)

    # Revocation is read from the database at most this often per process, so a
    # deactivated client's tokens stop working within this many seconds.
    revocation_refresh_seconds: float = Field(default=2.0, gt=0, le=5)

    # Each worker checks the registry's active version this often, so an
    # activation reaches every worker within this many seconds plus a load.
    model_refresh_seconds: float = Field(default=1.0, gt=0, le=4)

    # A trained version scoring below this macro-F1 on its hold-out is recorded but
    # not activated, so a bad upload cannot replace a good model.
    min_macro_f1: float = Field(default=0.0, ge=0, le=1)
    # Nor is one whose hold-out macro-F1 is more than this below the active version's
    # on the same hold-out rows: a retrain must not silently make the service worse.
    max_f1_drop: float = Field(default=0.01, ge=0, le=1)
    # Promotion rules for a shadowed candidate (POST /models/{version}/shadow): with
    # AUTO_PROMOTE on, it is activated, and the activation audited, once it has been
    # compared on at least AUTO_PROMOTE_MIN_ITEMS live items, agrees with the active
    # version on at least AUTO_PROMOTE_MIN_AGREEMENT of them, and flags at most
    # AUTO_PROMOTE_MAX_REVIEW_RATE_INCREASE more of them for review. Off by default:
    # a person decides.
    auto_promote: bool = False
    auto_promote_min_items: int = Field(default=5000, ge=100, le=1_000_000_000)
    auto_promote_min_agreement: float = Field(default=0.9, ge=0.5, le=1)
    auto_promote_max_review_rate_increase: float = Field(default=0.0, ge=0, le=1)
    # Wall-clock limit of one training job; its process is then killed and the job failed.
    training_timeout_seconds: float = Field(default=3600.0, gt=0, le=7 * 24 * 3600)
    # Cores a training job's independent fits (calibration folds, final fits) run
    # on, as worker processes of the job; unset: all but one of the CPUs this
    # process may use, so the web workers keep a core (app/ml/parallel.py).
    training_cores: int = Field(default_factory=all_cpus_but_one, ge=1, le=256)
    # A Dask scheduler (tcp:// or tls://host:port) that runs those fits instead of
    # this machine; the job still loads data, vectorises and saves here.
    training_cluster: str | None = Field(
        default=None, max_length=255, pattern=r"^(tcp|tls)://[A-Za-z0-9.\-]+(:[0-9]{1,5})?$"
    )
    # Largest total size of a request's headers; 431 above.
    max_header_bytes: int = Field(default=16 * 1024, ge=4096)
    # Largest request body anywhere else (JSON); 413 above.
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Largest CSV accepted by POST /datasets/.
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    # Characters (after NFKC) one POST /predict/batch may hold; 422 above. The
    # default is the contract's own maximum (1,000 names of 300); lower it to bound
    # the CPU one request may take.
    max_batch_chars: int = Field(default=300_000, ge=300, le=300_000)
    # Stored uploads per client (POST /datasets/): total bytes and files; 413 above.
    upload_quota_bytes: int = Field(default=1024**3, ge=1024)
    upload_quota_files: int = Field(default=100, ge=1, le=100_000)
    # Uploads older than this are deleted (unless an open training job uses them).
    upload_retention_days: float = Field(default=30, gt=0, le=3650)
    # POST /predictions/bulk: largest uploaded CSV (413 above), most data rows one
    # job may score (the job fails, naming the limit, past it), jobs queued or
    # running at once per client and in the whole service (409 above), and how long
    # a job may run before it is killed and failed.
    max_bulk_upload_bytes: int = Field(default=1024**3, ge=1024)
    max_bulk_rows: int = Field(default=10_000_000, ge=1, le=1_000_000_000)
    max_bulk_jobs_per_client: int = Field(default=2, ge=1, le=100)
    max_bulk_jobs: int = Field(default=4, ge=1, le=1000)
    bulk_timeout_seconds: float = Field(default=6 * 3600.0, gt=0, le=7 * 24 * 3600)
    # A bulk job's row and result file are deleted this long after it ends.
    bulk_result_retention_days: float = Field(default=7, gt=0, le=3650)
    # Worker processes a bulk job (and `python -m app.cli score`) scores on, forked
    # once the model is loaded; 1 scores in the job's own process. Unset: all but
    # one of the CPUs the process may use, so the web workers keep a core.
    bulk_cores: int = Field(default_factory=all_cpus_but_one, ge=1, le=256)

    # Requests per client and scope (`limits` notation, or "unlimited"); shared
    # across workers and replicas when REDIS_URL is set.
    rate_limit_predict: str = "6000/minute"
    rate_limit_train: str = "120/minute"
    rate_limit_admin: str = "120/minute"
    # POST /feedback/ per client, on top of the predict limit: proposals are stored
    # rows a reviewer must read, so they are far scarcer than predictions.
    rate_limit_feedback: str = "60/minute"
    # Accept feedback from `predict`-only clients straight into training (the old,
    # trusting behaviour). Off: their labels wait for a `train` client's review.
    feedback_auto_accept: bool = False

    auth_failure_limit: str = "10/5minutes"
    auth_failure_limit_per_address: str = "30/5minutes"
    # Secret verifications (Argon2id, ~64 MiB each) running at once per process;
    # token requests above this get 503 with Retry-After instead of queueing.
    max_concurrent_secret_checks: int = Field(default=4, ge=1, le=64)
    redis_url: str | None = None

    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator(
        "rate_limit_predict",
        "rate_limit_train",
        "rate_limit_admin",
        "rate_limit_feedback",
        "auth_failure_limit",
        "auth_failure_limit_per_address",
    )
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        # Caught at start-up, not on the first request that needs the limit.
        if value.strip().lower() == "unlimited":
            return value
        try:
            limits.parse(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate such as '100/minute' or '10/5minutes'"
            ) from None
        return value

    @field_validator("prediction_log")
    @classmethod
    def _valid_log_mode(cls, value: str) -> str:
        parse_log_mode(value)
        return value.strip().lower()

    @property
    def prediction_log_fraction(self) -> float:
        """Share of prediction requests the log records (0 when off, 1 for all)."""
        return parse_log_mode(self.prediction_log)

    @model_validator(mode="after")
    def _asymmetric_needs_a_key(self) -> Settings:
        if self.jwt_algorithm != "HS256" and self.jwt_private_key_file is None:
            raise ValueError(f"JWT_ALGORITHM={self.jwt_algorithm} needs JWT_PRIVATE_KEY_FILE")
        return self

    @property
    def previous_public_key_paths(self) -> list[Path]:
        """JWT_PREVIOUS_PUBLIC_KEY_FILES as paths."""
        return [Path(p.strip()) for p in self.jwt_previous_public_key_files.split(",") if p.strip()]

    @model_validator(mode="after")
    def _refuse_weak_secret_in_production(self) -> Settings:
        if self.environment is Environment.production:
            reason = weak_secret_reason(self.secret_key)
            if reason:
                raise ValueError(reason)
        return self

    @property
    def is_production(self) -> bool:
        """True when running with production safety checks."""
        return self.environment is Environment.production


def parse_log_mode(value: str) -> float:
    """The share of requests PREDICTION_LOG records; ValueError for anything unknown."""
    mode = value.strip().lower()
    if mode == "all":
        return 1.0
    if mode == "off":
        return 0.0
    kind, _, fraction = mode.partition(":")
    if kind == "sample":
        try:
            share = float(fraction)
        except ValueError:
            share = -1.0
        # `nan` fails both comparisons, so it is refused here too.
        if 0.0 < share <= 1.0:
            return share
    raise ValueError(f"{value!r} is not 'all', 'off' or 'sample:<fraction in (0, 1]>'")


def weak_secret_reason(secret_key: str | None) -> str | None:
    """Why `secret_key` is unfit to sign tokens, or None when it is fine."""
    # Here rather than in core.keys: Settings runs it while validating, and
    # core.keys imports this module, so the reverse import would be a cycle.
    if not secret_key:
        return "SECRET_KEY is not set"
    if secret_key == EXAMPLE_SECRET_KEY:
        return "SECRET_KEY is the example value from .env.example"
    if len(secret_key.encode()) < MIN_SECRET_KEY_BYTES:
        return f"SECRET_KEY is shorter than {MIN_SECRET_KEY_BYTES} bytes"
    return None


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning validation failures into a one-line ConfigurationError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        reasons = "; ".join(_describe(err["loc"], err["msg"]) for err in exc.errors())
        raise ConfigurationError(f"Garoupa refuses to start: {reasons}") from None


def _describe(loc: tuple[int | str, ...], msg: str) -> str:
    message = msg.removeprefix("Value error, ")
    return f"{str(loc[0]).upper()}: {message}" if loc else message


def environment_without_settings() -> dict[str, str]:
    """This process's environment minus every variable that names a setting."""
    setting_names = {name.upper() for name in Settings.model_fields}
    return {k: v for k, v in os.environ.items() if k.upper() not in setting_names}
