"""shadow evaluation

`shadow_run` records a candidate version scoring a share of live traffic beside
the active one (at most one open at a time: `open_slot` is unique and NULL once
a run has ended); `shadow_flip`, `shadow_scores` and `shadow_latency` hold what
every worker and replica has compared, added to by upserts, and
`shadow_example` a few names per flip (app/services/shadow.py). The downgrade
drops them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shadow_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_version", sa.String(32), nullable=False),
        sa.Column("active_version", sa.String(32), nullable=False),
        sa.Column("sample_rate", sa.Float(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("started_by", sa.String(128), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("end_reason", sa.String(200), nullable=True),
        sa.Column("open_slot", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_run")),
        sa.UniqueConstraint("open_slot", name=op.f("uq_shadow_run_open_slot")),
    )
    op.create_index(op.f("ix_shadow_run_candidate_version"), "shadow_run", ["candidate_version"])
    op.create_table(
        "shadow_flip",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("active_category", sa.String(100), nullable=False),
        sa.Column("candidate_category", sa.String(100), nullable=False),
        sa.Column("items", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "run_id", "active_category", "candidate_category", name=op.f("pk_shadow_flip")
        ),
    )
    op.create_table(
        "shadow_scores",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(9), nullable=False),
        sa.Column("score_bin", sa.Integer(), nullable=False),
        sa.Column("items", sa.BigInteger(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        sa.Column("needs_review", sa.BigInteger(), nullable=False),
        sa.Column("out_of_scope", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "side", "score_bin", name=op.f("pk_shadow_scores")),
    )
    op.create_table(
        "shadow_latency",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("latency_bin", sa.Integer(), nullable=False),
        sa.Column("items", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "latency_bin", name=op.f("pk_shadow_latency")),
    )
    op.create_table(
        "shadow_example",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("active_category", sa.String(100), nullable=False),
        sa.Column("candidate_category", sa.String(100), nullable=False),
        sa.Column("product_name", sa.String(300), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_example")),
    )
    op.create_index(
        "ix_shadow_example_flip",
        "shadow_example",
        ["run_id", "active_category", "candidate_category"],
    )


def downgrade() -> None:
    op.drop_index("ix_shadow_example_flip", table_name="shadow_example")
    op.drop_table("shadow_example")
    op.drop_table("shadow_latency")
    op.drop_table("shadow_scores")
    op.drop_table("shadow_flip")
    op.drop_index(op.f("ix_shadow_run_candidate_version"), table_name="shadow_run")
    op.drop_table("shadow_run")
