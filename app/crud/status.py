"""The database's own health."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def ping(session: Session) -> None:
    """One round trip; raises SQLAlchemyError when the database does not answer."""
    session.execute(text("SELECT 1"))
