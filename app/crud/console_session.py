"""SQL for console sessions: create, find by the cookie's hash, touch, end."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.db.models import ConsoleSession


def add(session: Session, row: ConsoleSession) -> None:
    """Store a new session (the caller commits)."""
    session.add(row)


def find(session: Session, token_hash: str) -> ConsoleSession | None:
    """The session whose cookie hashes to `token_hash`, if any."""
    return session.scalar(select(ConsoleSession).where(ConsoleSession.token_hash == token_hash))


def end(session: Session, token_hash: str) -> None:
    """Delete one session (the caller commits)."""
    session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == token_hash))


def end_idle(session: Session, *, seen_before: datetime, limit: int = 1000) -> int:
    """Delete at most `limit` sessions unused since `seen_before`; how many went."""
    oldest = (
        select(ConsoleSession.token_hash)
        .where(ConsoleSession.last_seen_at < seen_before)
        .order_by(ConsoleSession.last_seen_at)
        .limit(limit)
    )
    result = session.execute(
        delete(ConsoleSession).where(ConsoleSession.token_hash.in_(oldest.scalar_subquery()))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
