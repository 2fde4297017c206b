"""prediction log and audit trail

`prediction_log` holds one row per served prediction (batch items each get a
row), written in batches by each worker's background writer and purged after
PREDICTION_LOG_RETENTION_DAYS; `prediction_daily` sums it per UTC day, client,
version, category and flags, in the same transactions, for statistics.
`audit_log` records changes to clients, model activations, training starts,
dataset uploads and admin exports; triggers make it append-only on both SQLite
and PostgreSQL, so not even a bug in the service can rewrite it. A downgrade
drops the three tables and their history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import LogInstant, UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_PG_FUNCTION = """
CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "prediction_log",
        sa.Column("id", _ID, primary_key=True),
        # TIMESTAMPTZ on PostgreSQL, integer microseconds on SQLite (app/db/base.py).
        sa.Column("created_at", LogInstant(), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("product_name", sa.String(length=300), nullable=False),
        sa.Column("predicted_category", sa.String(length=100), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("in_scope", sa.Boolean(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("item", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_log")),
    )
    # PostgreSQL carries the statistics' columns in the index (an index-only scan for
    # the partial days of a range); SQLite has no INCLUDE and ignores the option.
    op.create_index(
        "ix_prediction_log_client_time",
        "prediction_log",
        ["client_id", "created_at", "id"],
        postgresql_include=[
            "predicted_category",
            "model_version",
            "score",
            "needs_review",
            "in_scope",
            "item",
        ],
    )
    op.create_index("ix_prediction_log_created_at", "prediction_log", ["created_at"])

    op.create_table(
        "prediction_daily",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("predicted_category", sa.String(length=100), nullable=False),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("in_scope", sa.Boolean(), nullable=False),
        sa.Column("predictions", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "client_id",
            "day",
            "model_version",
            "predicted_category",
            "needs_review",
            "in_scope",
            name=op.f("pk_prediction_daily"),
        ),
    )
    op.create_index("ix_prediction_daily_day", "prediction_daily", ["day"])

    op.create_table(
        "audit_log",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=160), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_created_at"), "audit_log", ["created_at"])
    op.create_index(op.f("ix_audit_log_actor"), "audit_log", ["actor"])
    op.create_index(op.f("ix_audit_log_action"), "audit_log", ["action"])

    if op.get_context().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_table("audit_log")
    op.drop_table("prediction_daily")
    op.drop_table("prediction_log")
