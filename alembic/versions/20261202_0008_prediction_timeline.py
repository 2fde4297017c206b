"""prediction timeline

`prediction_timeline` sums the prediction log per five-minute slot and model
version: predictions, requests, review and out-of-scope counts, the score sum,
and histograms of scores (tenths) and request latency (the bounds in
app/db/models.py). The console draws its charts over time from it. The upgrade
fills it from the log rows already there, in one statement; the downgrade drops
it. On PostgreSQL a partial expression index on flagged rows' name keys lets
the review queue group near-duplicate names (app/db/name_key.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import LogInstant

# Copied, not imported: a migration must keep meaning what it meant when written.
SCORE_BINS = 10
LATENCY_BOUNDS_MS = (1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000, 2000)
SLOT_SECONDS = 300

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prediction_timeline",
        sa.Column("slot", LogInstant(), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("predictions", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("needs_review", sa.BigInteger(), nullable=False),
        sa.Column("out_of_scope", sa.BigInteger(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        *(sa.Column(f"score_{i}", sa.BigInteger(), nullable=False) for i in range(SCORE_BINS)),
        *(
            sa.Column(f"latency_{i}", sa.BigInteger(), nullable=False)
            for i in range(len(LATENCY_BOUNDS_MS) + 1)
        ),
        sa.PrimaryKeyConstraint("slot", "model_version", name=op.f("pk_prediction_timeline")),
    )
    dialect = op.get_bind().dialect.name
    op.execute(_backfill(dialect))
    if dialect == "postgresql":
        # The review queue finds a flagged name's near-duplicates by this key
        # (app/db/name_key.py); SQLite computes it per row, without an index.
        op.execute(
            "CREATE INDEX ix_prediction_log_review_key ON prediction_log "
            "(regexp_replace(lower(product_name), '[^[:alnum:]]+', '', 'g')) "
            "WHERE needs_review"
        )


def _backfill(dialect: str) -> str:
    if dialect == "sqlite":
        # Instants are integer microseconds there (LogInstant).
        slot = f"created_at - created_at % {SLOT_SECONDS * 1_000_000}"
        review, out_of_scope = "needs_review", "1 - in_scope"
    else:
        slot = (
            f"to_timestamp(floor(extract(epoch FROM created_at) / {SLOT_SECONDS}) * {SLOT_SECONDS})"
        )
        review, out_of_scope = "needs_review::int", "(NOT in_scope)::int"
    # The writer's rule: bin i holds i <= score * 10 < i + 1, the last one also 10.
    tenth = (
        f"CAST(score * {SCORE_BINS} AS INTEGER)"
        if dialect == "sqlite"
        else (f"floor(score * {SCORE_BINS})")
    )
    scores = [
        f"SUM(CASE WHEN {tenth} {'>=' if i == SCORE_BINS - 1 else '='} {i} THEN 1 ELSE 0 END)"
        for i in range(SCORE_BINS)
    ]
    latency_cases = []
    for i in range(len(LATENCY_BOUNDS_MS) + 1):
        above = f"latency_ms > {LATENCY_BOUNDS_MS[i - 1]}" if i else "1 = 1"
        below = f"latency_ms <= {LATENCY_BOUNDS_MS[i]}" if i < len(LATENCY_BOUNDS_MS) else "1 = 1"
        latency_cases.append(f"SUM(CASE WHEN item = 0 AND {above} AND {below} THEN 1 ELSE 0 END)")
    columns = [
        "slot",
        "model_version",
        "predictions",
        "requests",
        "needs_review",
        "out_of_scope",
        "score_sum",
        *(f"score_{i}" for i in range(SCORE_BINS)),
        *(f"latency_{i}" for i in range(len(LATENCY_BOUNDS_MS) + 1)),
    ]
    values = [
        f"{slot} AS slot",
        "model_version",
        "COUNT(*)",
        "SUM(CASE WHEN item = 0 THEN 1 ELSE 0 END)",
        f"SUM({review})",
        f"SUM({out_of_scope})",
        "SUM(score)",
        *scores,
        *latency_cases,
    ]
    return (
        f"INSERT INTO prediction_timeline ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM prediction_log GROUP BY 1, 2"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_prediction_log_review_key", table_name="prediction_log")
    op.drop_table("prediction_timeline")
