"""feedback review: status, reviewed_by, reviewed_at

Feedback from a `predict`-only client becomes a proposal that a `train` client
accepts or rejects; only accepted rows are trained on. Rows stored before this
revision were trusted (every one of them was trained on), so they become
`accepted`, with no reviewer recorded (reviewed_by and reviewed_at stay NULL).
New rows get their status from the application, so the column keeps no
server default once the existing rows are filled. A downgrade deletes the rows
that are not accepted, since revision 0003 would train on them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="accepted")
        )
        batch.add_column(sa.Column("reviewed_by", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("reviewed_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("feedback") as batch:
        batch.alter_column("status", server_default=None)
        batch.create_index(op.f("ix_feedback_status"), ["status"])


def downgrade() -> None:
    # Revision 0003 trains on every row it finds: proposals and rejected rows must
    # not survive a downgrade, or they would reach the next training job.
    op.execute(sa.text("DELETE FROM feedback WHERE status <> 'accepted'"))
    with op.batch_alter_table("feedback") as batch:
        batch.drop_index(op.f("ix_feedback_status"))
        batch.drop_column("reviewed_at")
        batch.drop_column("reviewed_by")
        batch.drop_column("status")
