"""training_jobs and feedback tables

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "training_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("open_slot", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("percent", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=True),
        sa.Column("new_model_version", sa.String(length=32), nullable=False),
        sa.Column("base_version", sa.String(length=32), nullable=True),
        sa.Column("data_path", sa.String(length=500), nullable=True),
        sa.Column("algorithm", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("data_rows", sa.Integer(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("best_params", sa.JSON(), nullable=True),
        sa.Column("cv_results", sa.JSON(), nullable=True),
        sa.Column("produced_version", sa.String(length=32), nullable=True),
        sa.Column("activated", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_jobs")),
        sa.UniqueConstraint("job_id", name=op.f("uq_training_jobs_job_id")),
        sa.UniqueConstraint("open_slot", name=op.f("uq_training_jobs_open_slot")),
        sa.UniqueConstraint("new_model_version", name=op.f("uq_training_jobs_new_model_version")),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_name", sa.String(length=300), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("predicted_category", sa.String(length=100), nullable=True),
        sa.Column("model_version", sa.String(length=32), nullable=True),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    op.create_index(op.f("ix_feedback_model_version"), "feedback", ["model_version"])


def downgrade() -> None:
    op.drop_index(op.f("ix_feedback_model_version"), table_name="feedback")
    op.drop_table("feedback")
    op.drop_table("training_jobs")
