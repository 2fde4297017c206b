"""training job progress by fits

`training_jobs` gains the job's independent fits done and planned and the time
its fits are expected to be done (app/ml/parallel.py), so `GET /training/{id}`
shows progress inside the long fit stages. Existing rows keep NULL (no count).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch:
        batch.add_column(sa.Column("fits_done", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("fits_total", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("fits_eta_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_column("fits_eta_at")
        batch.drop_column("fits_total")
        batch.drop_column("fits_done")
