"""bulk scoring jobs

`bulk_jobs` holds one row per POST /predictions/bulk: the client that owns it,
its model version, its input, its progress and when its result expires
(app/crud/bulk_job.py). It starts empty; the downgrade drops it (result files
under MODEL_DIR/bulk are left for the operator to delete).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bulk_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("data_path", sa.String(length=500), nullable=True),
        sa.Column("input_file", sa.String(length=1000), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("bad_rows", sa.BigInteger(), nullable=False),
        sa.Column("bytes_read", sa.BigInteger(), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=True),
        sa.Column("rows_per_second", sa.Float(), nullable=True),
        sa.Column("eta_seconds", sa.Float(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_jobs")),
        sa.UniqueConstraint("job_id", name=op.f("uq_bulk_jobs_job_id")),
    )
    op.create_index(op.f("ix_bulk_jobs_client_id"), "bulk_jobs", ["client_id"])
    op.create_index(op.f("ix_bulk_jobs_status"), "bulk_jobs", ["status"])
    op.create_index(op.f("ix_bulk_jobs_finished_at"), "bulk_jobs", ["finished_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_bulk_jobs_finished_at"), table_name="bulk_jobs")
    op.drop_index(op.f("ix_bulk_jobs_status"), table_name="bulk_jobs")
    op.drop_index(op.f("ix_bulk_jobs_client_id"), table_name="bulk_jobs")
    op.drop_table("bulk_jobs")
