"""ORM models: the tables Garoupa owns."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime


class Client(Base):
    """A machine client allowed to obtain tokens (OAuth2 client credentials)."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(255))
    # Space-separated, canonical order: the same string a token's `scope` claim carries.
    scopes: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Tokens issued (iat) before this instant are refused: set on deactivation,
    # secret rotation and scope changes to revoke what is outstanding.
    tokens_valid_after: Mapped[datetime] = mapped_column(UTCDateTime)
