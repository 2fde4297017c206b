"""prediction rollups

`prediction_rollup` adds the daily sums of every client together per day,
version, category and flags; `prediction_rollup_client` adds each client's
daily sums together per day; `prediction_rollup_day` lists the days both hold
completely (app/crud/prediction_rollup.py). Month-long service-wide statistics
read them instead of every client's sums. They start empty: the server's
hourly maintenance pass fills the closed days, and until then statistics read
the daily sums as before. The downgrade drops them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prediction_rollup",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("predicted_category", sa.String(100), nullable=False),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("in_scope", sa.Boolean(), nullable=False),
        sa.Column("predictions", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day",
            "model_version",
            "predicted_category",
            "needs_review",
            "in_scope",
            name=op.f("pk_prediction_rollup"),
        ),
    )
    op.create_table(
        "prediction_rollup_client",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("predictions", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        sa.Column("needs_review", sa.BigInteger(), nullable=False),
        sa.Column("out_of_scope", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "client_id", name=op.f("pk_prediction_rollup_client")),
    )
    op.create_table(
        "prediction_rollup_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rolled_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_prediction_rollup_day")),
    )


def downgrade() -> None:
    op.drop_table("prediction_rollup_day")
    op.drop_table("prediction_rollup_client")
    op.drop_table("prediction_rollup")
