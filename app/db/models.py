"""ORM models: the tables Garoupa owns."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.review import FeedbackStatus
from app.db.base import Base, LogInstant, UTCDateTime


class Client(Base):
    """A machine client allowed to obtain tokens (OAuth2 client credentials)."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(255))
    # Space-separated, canonical order: the same string a token's `scope` claim carries.
    scopes: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Tokens issued (iat) before this instant are refused: set on deactivation,
    # secret rotation and scope changes to revoke what is outstanding.
    tokens_valid_after: Mapped[datetime] = mapped_column(UTCDateTime)


class ModelVersion(Base):
    """One immutable trained model: its artifact, the data it saw, and how well it scored."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(32), unique=True)
    # File names relative to MODEL_DIR, so the artifact directory can move or be shared.
    artifact_file: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    # The fast scorer as memory-mappable arrays (its manifest), which workers serve
    # from instead of the pickled pipeline; NULL when the pipeline has none.
    scorer_file: Mapped[str | None] = mapped_column(String(255), default=None)
    scorer_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    algorithm: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    classes: Mapped[list[str]] = mapped_column(JSON)
    # The exact rows the version was trained and evaluated on, kept as a CSV beside
    # the artifact so a later version can build on them ("include base data").
    data_file: Mapped[str] = mapped_column(String(255))
    data_rows: Mapped[int] = mapped_column(Integer)
    data_sha256: Mapped[str] = mapped_column(String(64))
    data_sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    library_versions: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (
        # At most one active version, enforced by the database itself so that two
        # processes activating at once cannot both win.
        Index(
            "uq_model_versions_one_active",
            "is_active",
            unique=True,
            sqlite_where=is_active == true(),
            postgresql_where=is_active == true(),
        ),
    )

    @property
    def accuracy(self) -> float | None:
        """Hold-out accuracy, if recorded."""
        return (self.metrics or {}).get("accuracy")

    @property
    def macro_f1(self) -> float | None:
        """Hold-out macro-F1, if recorded."""
        return (self.metrics or {}).get("macro_f1")

    @property
    def ece(self) -> float | None:
        """Hold-out expected calibration error, if recorded."""
        return (self.metrics or {}).get("ece")

    @property
    def best_params(self) -> dict[str, Any] | None:
        """The parameters a grid search chose; None when there was no search."""
        search = (self.metrics or {}).get("search") or {}
        return search.get("best_params")


class TrainingJob(Base):
    """One training run, from the API or train.py; its state is what every worker reports."""

    __tablename__ = "training_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(36), unique=True)
    # 1 while queued or running, NULL once finished: the unique constraint lets the
    # database itself refuse a second open job, across workers and replicas.
    open_slot: Mapped[int | None] = mapped_column(Integer, unique=True, default=1)
    status: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(32), default=None)
    percent: Mapped[float] = mapped_column(Float, default=0.0)
    source: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str | None] = mapped_column(String(128), default=None)
    # Reserved when the job is created, so the 202 answer can name it.
    new_model_version: Mapped[str] = mapped_column(String(32), unique=True)
    base_version: Mapped[str | None] = mapped_column(String(32), default=None)
    data_path: Mapped[str | None] = mapped_column(String(500), default=None)
    algorithm: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    host: Mapped[str | None] = mapped_column(String(255), default=None)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    message: Mapped[str | None] = mapped_column(Text, default=None)
    data_rows: Mapped[int | None] = mapped_column(Integer, default=None)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    best_params: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    cv_results: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    produced_version: Mapped[str | None] = mapped_column(String(32), default=None)
    activated: Mapped[bool] = mapped_column(Boolean, default=False)
    # The independent fits (app/ml/parallel.py) done and planned, and when the rest
    # are expected to be done at the rate so far; NULL for algorithms that do not count.
    fits_done: Mapped[int | None] = mapped_column(Integer, default=None)
    fits_total: Mapped[int | None] = mapped_column(Integer, default=None)
    fits_eta_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to finish (to the millisecond); None until it has finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    @property
    def elapsed_seconds(self) -> float | None:
        """Seconds since the job started (its duration once finished); None while queued."""
        if self.started_at is None:
            return None
        end = self.finished_at or datetime.now(UTC)
        return round(max(0.0, (end - self.started_at).total_seconds()), 3)

    @property
    def eta_seconds(self) -> float | None:
        """Seconds until the remaining fits are expected to be done, while they run."""
        if self.finished_at is not None or self.fits_eta_at is None:
            return None
        return round(max(0.0, (self.fits_eta_at - datetime.now(UTC)).total_seconds()), 1)

    @property
    def warnings(self) -> list[str]:
        """Categories left out of the job's data, as its metrics record them."""
        return list((self.metrics or {}).get("warnings", []))


class BulkJob(Base):
    """One bulk scoring run (POST /predictions/bulk): whose it is, where it is, what it did."""

    __tablename__ = "bulk_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(36), unique=True)
    # The only client that may see the job and read its result.
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    # queued, running, succeeded or failed; the open ones count against the limits.
    status: Mapped[str] = mapped_column(String(16), index=True)
    model_version: Mapped[str] = mapped_column(String(32))
    # "upload" (the job's own copy, deleted when it ends) or "data_path".
    source: Mapped[str] = mapped_column(String(16))
    data_path: Mapped[str | None] = mapped_column(String(500), default=None)
    input_file: Mapped[str] = mapped_column(String(1000))
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    bad_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)
    total_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    rows_per_second: Mapped[float | None] = mapped_column(Float, default=None)
    eta_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    host: Mapped[str | None] = mapped_column(String(255), default=None)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The maintenance pass deletes a job and its files BULK_RESULT_RETENTION_DAYS after this.
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None, index=True)
    # When a succeeded job's result goes (finished_at plus the retention), as shown to clients.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class Feedback(Base):
    """A ground-truth label for a product name, with the prediction it corrects."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_name: Mapped[str] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(100))
    predicted_category: Mapped[str | None] = mapped_column(String(100), default=None)
    model_version: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    client_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Only accepted rows are trained on: a `predict` client's label is a proposal
    # until a `train` client accepts it (or FEEDBACK_AUTO_ACCEPT is on).
    status: Mapped[str] = mapped_column(
        String(16), default=FeedbackStatus.proposed.value, index=True
    )
    # Who accepted or rejected the row; NULL for rows accepted by FEEDBACK_AUTO_ACCEPT
    # or stored before review existed.
    reviewed_by: Mapped[str | None] = mapped_column(String(128), default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


# 64-bit on PostgreSQL, where the log reaches billions of rows over its life;
# SQLite's INTEGER PRIMARY KEY is already 64-bit and must be spelled INTEGER to
# stay the rowid alias that autoincrements.
_LogId = BigInteger().with_variant(Integer(), "sqlite")


# What the log's statistics read besides the key (see ix_prediction_log_client_time).
_STATS_COLUMNS = [
    "predicted_category",
    "model_version",
    "score",
    "needs_review",
    "in_scope",
    "item",
]


class PredictionLogEntry(Base):
    """One served prediction (a batch item is a row of its own), written off the request path."""

    __tablename__ = "prediction_log"

    id: Mapped[int] = mapped_column(_LogId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(LogInstant)
    client_id: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(32))
    product_name: Mapped[str] = mapped_column(String(300))
    predicted_category: Mapped[str] = mapped_column(String(100))
    score: Mapped[float] = mapped_column(Float)
    needs_review: Mapped[bool] = mapped_column(Boolean)
    in_scope: Mapped[bool] = mapped_column(Boolean)
    request_id: Mapped[str | None] = mapped_column(String(128), default=None)
    # Position of the name in its batch; 0 for a single prediction.
    item: Mapped[int] = mapped_column(Integer, default=0)
    # Time the whole request took to score, in milliseconds (shared by a batch's rows).
    latency_ms: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        # A client's history, newest first with an (created_at, id) cursor, and its
        # statistics over a time range: one index range scan each. On PostgreSQL the
        # statistics' columns ride along, so the partial days at a range's ends are
        # summed from the index alone (measured: 259 -> 96 ms p99 for a client with
        # 850,000 rows a month; docs/performance.md).
        Index(
            "ix_prediction_log_client_time",
            "client_id",
            "created_at",
            "id",
            postgresql_include=_STATS_COLUMNS,
        ),
        # Retention deletes and the admin's all-clients listing walk time alone.
        Index("ix_prediction_log_created_at", "created_at"),
        # The console's review queue: flagged rows only (a small share of the log),
        # lowest score first, and a name's flagged duplicates.
        Index(
            "ix_prediction_log_review_score",
            "score",
            "id",
            sqlite_where=text("needs_review = 1"),
            postgresql_where=text("needs_review"),
        ),
        Index(
            "ix_prediction_log_review_name",
            "product_name",
            sqlite_where=text("needs_review = 1"),
            postgresql_where=text("needs_review"),
        ),
    )


class PredictionDaily(Base):
    """The prediction log summed per UTC day, client, version, category and flags.

    Written in the same transaction as the log rows it sums, so the two always
    agree; statistics over whole days read this instead of millions of rows.
    """

    __tablename__ = "prediction_daily"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    model_version: Mapped[str] = mapped_column(String(32), primary_key=True)
    predicted_category: Mapped[str] = mapped_column(String(100), primary_key=True)
    needs_review: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    in_scope: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    predictions: Mapped[int] = mapped_column(BigInteger)
    # Requests are counted at their first name (item 0), so they add up across rows.
    requests: Mapped[int] = mapped_column(BigInteger)
    score_sum: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        # Service-wide statistics and the retention purge walk days alone.
        Index("ix_prediction_daily_day", "day"),
    )


class PredictionRollup(Base):
    """The daily sums of every client added together, for closed days only.

    A month of service-wide statistics reads a few thousand of these instead of
    every client's sums. Filled after a day has closed (app/crud/prediction_rollup.py)
    and valid only for the days PredictionRolledDay lists: a late log row on such a
    day makes the writer drop that day here, and statistics read it from the
    daily sums again until it is rolled up anew.
    """

    __tablename__ = "prediction_rollup"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    model_version: Mapped[str] = mapped_column(String(32), primary_key=True)
    predicted_category: Mapped[str] = mapped_column(String(100), primary_key=True)
    needs_review: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    in_scope: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    predictions: Mapped[int] = mapped_column(BigInteger)
    requests: Mapped[int] = mapped_column(BigInteger)
    score_sum: Mapped[float] = mapped_column(Float)


class PredictionClientRollup(Base):
    """Each client's daily sums added over versions, categories and flags (closed days)."""

    __tablename__ = "prediction_rollup_client"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    predictions: Mapped[int] = mapped_column(BigInteger)
    requests: Mapped[int] = mapped_column(BigInteger)
    score_sum: Mapped[float] = mapped_column(Float)
    needs_review: Mapped[int] = mapped_column(BigInteger)
    out_of_scope: Mapped[int] = mapped_column(BigInteger)


class PredictionRolledDay(Base):
    """A day whose rollups are complete: the two rollup tables hold all of its sums."""

    __tablename__ = "prediction_rollup_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    rolled_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ShadowRun(Base):
    """A candidate version scoring a share of live traffic beside the active one.

    `open_slot` is True while the run is open and NULL once it has ended: unique,
    so at most one run is open at a time on every backend (NULLs never collide).
    """

    __tablename__ = "shadow_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    candidate_version: Mapped[str] = mapped_column(String(32), index=True)
    # The version served when the run started: items another version served are skipped.
    active_version: Mapped[str] = mapped_column(String(32))
    sample_rate: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_by: Mapped[str] = mapped_column(String(128))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    open_slot: Mapped[bool | None] = mapped_column(Boolean, nullable=True, unique=True)


class ShadowFlip(Base):
    """How many compared items got `active_category` from the active version and
    `candidate_category` from the candidate (the diagonal is agreement)."""

    __tablename__ = "shadow_flip"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    active_category: Mapped[str] = mapped_column(String(100), primary_key=True)
    candidate_category: Mapped[str] = mapped_column(String(100), primary_key=True)
    items: Mapped[int] = mapped_column(BigInteger)


class ShadowScores(Base):
    """One side's (`active` or `candidate`) compared items per tenth of the score."""

    __tablename__ = "shadow_scores"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    side: Mapped[str] = mapped_column(String(9), primary_key=True)
    score_bin: Mapped[int] = mapped_column(Integer, primary_key=True)
    items: Mapped[int] = mapped_column(BigInteger)
    score_sum: Mapped[float] = mapped_column(Float)
    needs_review: Mapped[int] = mapped_column(BigInteger)
    out_of_scope: Mapped[int] = mapped_column(BigInteger)


class ShadowLatency(Base):
    """The candidate's scoring time per item, as a histogram (app/services/shadow.py)."""

    __tablename__ = "shadow_latency"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    latency_bin: Mapped[int] = mapped_column(Integer, primary_key=True)
    items: Mapped[int] = mapped_column(BigInteger)
    seconds: Mapped[float] = mapped_column(Float)


class ShadowExample(Base):
    """A name the two versions categorised differently (a few per flip)."""

    __tablename__ = "shadow_example"
    __table_args__ = (
        Index("ix_shadow_example_flip", "run_id", "active_category", "candidate_category"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(Integer)
    active_category: Mapped[str] = mapped_column(String(100))
    candidate_category: Mapped[str] = mapped_column(String(100))
    product_name: Mapped[str] = mapped_column(String(300))


class AuditEvent(Base):
    """A change to the service's security or models, recorded once and never edited.

    The migration backs "never edited" with triggers that refuse UPDATE and DELETE.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(_LogId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # A client id, or `cli:<os user>` for manage_clients.py.
    actor: Mapped[str] = mapped_column(String(160), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(300), default=None)
    # "success" or "failure"; `detail` says why a failure failed.
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class ConsoleSession(Base):
    """A person signed in to the console: the server side of its session cookie.

    Only a hash of the cookie's value is kept, so a copy of the table signs no
    one in. Revocation is the client's (`tokens_valid_after`), as for tokens.
    """

    __tablename__ = "console_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    # The client's scopes at sign-in: a change to them revokes the session.
    scopes: Mapped[str] = mapped_column(String(200))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ReviewDecision(Base):
    """What a person decided about one logged prediction in the review queue."""

    __tablename__ = "review_decision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # prediction_log.id; no foreign key, so that the log's retention purge never
    # has to look here (a decision outlives the row it was about).
    prediction_id: Mapped[int] = mapped_column(_LogId, unique=True)
    reviewer: Mapped[str] = mapped_column(String(128))
    # confirm (the model was right), correct (another category) or skip.
    action: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(100), default=None)
    feedback_id: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_review_decision_reviewer_time", "reviewer", "created_at"),)


# The timeline's bins. Scores in tenths: bin i holds i/10 <= score < (i+1)/10, and the
# last one also 1.0. Request latencies in milliseconds: bin i holds those above
# LATENCY_BOUNDS_MS[i-1] and at most LATENCY_BOUNDS_MS[i]; the last bin the rest.
SCORE_BINS = 10
LATENCY_BOUNDS_MS = (1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000, 2000)
LATENCY_BINS = len(LATENCY_BOUNDS_MS) + 1
# Five minutes: the last hour is drawn in 12 steps, a month sums 8,640 rows per version.
TIMELINE_SLOT_SECONDS = 300

# The prediction log summed per five-minute slot and model version, with score and
# request-latency histograms: the console's charts over time. Written with the daily
# sums, in the log rows' transaction. A Core table: its 35 counters are columns so
# that an upsert adds them in SQL, and they are named, not mapped one by one.
prediction_timeline = Table(
    "prediction_timeline",
    Base.metadata,
    Column("slot", LogInstant, primary_key=True),
    Column("model_version", String(32), primary_key=True),
    Column("predictions", BigInteger, nullable=False),
    # Counted at a request's first name, like the daily sums' requests.
    Column("requests", BigInteger, nullable=False),
    Column("needs_review", BigInteger, nullable=False),
    Column("out_of_scope", BigInteger, nullable=False),
    Column("score_sum", Float, nullable=False),
    *(Column(f"score_{i}", BigInteger, nullable=False) for i in range(SCORE_BINS)),
    *(Column(f"latency_{i}", BigInteger, nullable=False) for i in range(LATENCY_BINS)),
)
