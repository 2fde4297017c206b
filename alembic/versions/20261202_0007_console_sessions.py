"""console sessions and the review queue

`console_session` holds the server side of a person's console sign-in: a hash
of the session cookie, the client it belongs to, the scopes it had at sign-in,
its CSRF token and when it was created and last used. `review_decision` records
what a reviewer decided about a logged prediction (confirmed, corrected or
skipped, and the feedback row it made), one row per prediction. Two partial
indexes on `prediction_log` cover only the rows flagged `needs_review`: the
queue walks them lowest score first, and finds a name's duplicates. A
downgrade drops all of it (everyone is signed out; decisions are lost, the
feedback they made stays).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UTCDateTime

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_session",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_session")),
    )
    op.create_index(
        op.f("ix_console_session_client_id"), "console_session", ["client_id"], unique=False
    )
    op.create_index(
        op.f("ix_console_session_last_seen_at"), "console_session", ["last_seen_at"], unique=False
    )

    op.create_table(
        "review_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prediction_id", _ID, nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("category", sa.String(100), nullable=True),
        sa.Column("feedback_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_decision")),
        sa.UniqueConstraint("prediction_id", name=op.f("uq_review_decision_prediction_id")),
    )
    op.create_index(
        "ix_review_decision_reviewer_time", "review_decision", ["reviewer", "created_at"]
    )
    # Spelled as SQLAlchemy renders `WHERE needs_review` on each backend, so that
    # each planner sees the query's condition is the index's.
    sqlite_flagged, postgresql_flagged = sa.text("needs_review = 1"), sa.text("needs_review")
    op.create_index(
        "ix_prediction_log_review_score",
        "prediction_log",
        ["score", "id"],
        sqlite_where=sqlite_flagged,
        postgresql_where=postgresql_flagged,
    )
    op.create_index(
        "ix_prediction_log_review_name",
        "prediction_log",
        ["product_name"],
        sqlite_where=sqlite_flagged,
        postgresql_where=postgresql_flagged,
    )


def downgrade() -> None:
    op.drop_index("ix_prediction_log_review_name", table_name="prediction_log")
    op.drop_index("ix_prediction_log_review_score", table_name="prediction_log")
    op.drop_table("review_decision")
    op.drop_table("console_session")
