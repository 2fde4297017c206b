"""SQL for the audit trail: insert and read, never update or delete (the table refuses both)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from app.db.models import AuditEvent


@dataclass(frozen=True)
class AuditFilter:
    """Which events a read covers; every field is optional, `until` is exclusive."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        """`query` restricted to the events this filter names."""
        conditions: list[ColumnElement[bool]] = []
        if self.actor is not None:
            conditions.append(AuditEvent.actor == self.actor)
        if self.action is not None:
            conditions.append(AuditEvent.action == self.action)
        if self.target is not None:
            conditions.append(AuditEvent.target == self.target)
        if self.outcome is not None:
            conditions.append(AuditEvent.outcome == self.outcome)
        if self.since is not None:
            conditions.append(AuditEvent.created_at >= self.since)
        if self.until is not None:
            conditions.append(AuditEvent.created_at < self.until)
        return query.where(*conditions) if conditions else query


def insert_event(
    session: Session,
    *,
    created_at: datetime,
    actor: str,
    action: str,
    target: str | None,
    outcome: str,
    detail: dict[str, Any] | None,
) -> AuditEvent:
    """Stage one event in the session's transaction."""
    event = AuditEvent(
        created_at=created_at,
        actor=actor,
        action=action,
        target=target,
        outcome=outcome,
        detail=detail,
    )
    session.add(event)
    return event


def list_events(
    session: Session,
    where: AuditFilter,
    *,
    limit: int,
    before: tuple[datetime, int] | None = None,
) -> Sequence[AuditEvent]:
    """Events newest first; `before` is the (created_at, id) of the last event already seen."""
    query = where.apply(select(AuditEvent))
    if before is not None:
        # (created_at, id) is a total order even when two events share a timestamp,
        # so a walk page by page sees every event exactly once. Spelled out rather
        # than as a row-value comparison so the time is bound through the column's
        # own type (SQLite compares the stored UTC text).
        created_at, event_id = before
        query = query.where(
            or_(
                AuditEvent.created_at < created_at,
                and_(AuditEvent.created_at == created_at, AuditEvent.id < event_id),
            )
        )
    query = query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit)
    return session.scalars(query).all()
