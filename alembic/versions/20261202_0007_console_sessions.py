"""console sessions

`console_session` holds the server side of a person's console sign-in: a hash
of the session cookie, the client it belongs to, the scopes it had at sign-in,
its CSRF token and when it was created and last used. A downgrade drops it
(everyone is signed out).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UTCDateTime

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


def downgrade() -> None:
    op.drop_table("console_session")
