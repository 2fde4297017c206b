"""model versions: the stored fast scorer (scorer_file, scorer_sha256)

A version saved from now on may also carry its fast scorer as plain arrays
(app/ml/scorer_bundle.py) that workers memory-map instead of unpickling the
pipeline. Both columns stay NULL for versions saved before, and for pipelines
the scorer cannot reproduce: those are served from the joblib artifact, as
before. A downgrade drops the columns; the bundle directories stay on disk,
unused.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("scorer_file", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("scorer_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("scorer_sha256")
        batch.drop_column("scorer_file")
