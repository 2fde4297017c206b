"""The audit trail: who changed clients, models, training or data, when, and whether it worked.

Events are only ever inserted; the database itself refuses UPDATE and DELETE on
`audit_log`. There are two ways to record one:

- `record_event(session, ...)` stages the event in the caller's transaction, so
  the change and its record commit, or fail, together. The client registry does
  this: a client change that cannot be audited does not happen (the caller gets
  the database error, and nothing changed).
- `AuditTrail.recording(...)` records right after a service that commits on its
  own (model activation, training start, dataset upload). The change has already
  happened then, so a failed insert is logged at ERROR level with the whole
  event and the request still succeeds: answering 500 would make the caller
  retry a change that was made (a second training job, a second upload).

`detail` is a small JSON object that never holds a secret: keys that look like
one are refused outright, so a careless caller fails its tests rather than
leaking.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.core.errors import GaroupaError
from app.crud import audit as crud
from app.crud.audit import AuditFilter
from app.db.models import AuditEvent

__all__ = [
    "Actor",
    "AuditAction",
    "AuditFilter",
    "AuditOutcome",
    "AuditPage",
    "AuditTrail",
    "PendingEvent",
    "decode_cursor",
    "operator_name",
    "record_event",
]

logger = logging.getLogger(__name__)

# Column sizes of audit_log.
MAX_ACTOR_LENGTH = 160
MAX_TARGET_LENGTH = 300
# A detail is a note, not a payload: its JSON stays under this many characters.
MAX_DETAIL_CHARS = 4000
MAX_REASON_CHARS = 300
_SECRET_LIKE_KEYS = ("secret", "password", "token", "hash", "authorization", "credential")


class AuditAction(StrEnum):
    """What an event records; only these are ever written."""

    client_create = "client.create"
    client_update = "client.update"
    client_activate = "client.activate"
    client_deactivate = "client.deactivate"
    client_rotate_secret = "client.rotate_secret"
    client_set_scopes = "client.set_scopes"
    client_delete = "client.delete"
    model_activate = "model.activate"
    model_shadow_start = "model.shadow_start"
    model_shadow_stop = "model.shadow_stop"
    training_start = "training.start"
    dataset_upload = "dataset.upload"
    admin_export = "admin.export"


class AuditOutcome(StrEnum):
    """Whether the recorded change was made; a failure's detail says why not."""

    success = "success"
    failure = "failure"


def operator_name() -> str:
    """`cli:<os user>`: how a person acting with direct database access is recorded."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        # A container user with no name (no USER, no passwd entry) is still someone.
        user = f"uid-{os.getuid()}"
    return f"cli:{user}"[:MAX_ACTOR_LENGTH]


@dataclass(frozen=True)
class Actor:
    """Who makes a change: an authenticated client, or an operator at the command line."""

    name: str
    # The acting client, so that the registry can stop an admin from demoting itself;
    # None for an operator.
    client_id: str | None = None

    @classmethod
    def client(cls, client_id: str) -> Actor:
        """A client acting through the API with its bearer token."""
        return cls(name=client_id, client_id=client_id)

    @classmethod
    def operator(cls) -> Actor:
        """This process's OS user, acting through manage_clients.py or another local tool."""
        return cls(name=operator_name())


def record_event(
    session: Session,
    *,
    actor: str,
    action: AuditAction,
    target: str | None,
    outcome: AuditOutcome = AuditOutcome.success,
    detail: Mapping[str, object] | None = None,
) -> AuditEvent:
    """Stage one event in the session's transaction; the caller commits it with its change."""
    return crud.insert_event(
        session,
        created_at=datetime.now(UTC),
        actor=actor[:MAX_ACTOR_LENGTH],
        action=AuditAction(action).value,
        target=None if target is None else target[:MAX_TARGET_LENGTH],
        outcome=AuditOutcome(outcome).value,
        detail=_checked_detail(detail),
    )


def _checked_detail(detail: Mapping[str, object] | None) -> dict[str, Any] | None:
    if not detail:
        return None
    for key in _keys(detail):
        if any(word in key.lower() for word in _SECRET_LIKE_KEYS):
            raise ValueError(f"audit detail key {key!r} looks like a secret; never record one")
    encoded = json.dumps(detail, default=str)
    if len(encoded) > MAX_DETAIL_CHARS:
        raise ValueError(f"audit detail is {len(encoded)} characters; at most {MAX_DETAIL_CHARS}")
    # Through JSON once: what is stored is exactly what was checked.
    checked: dict[str, Any] = json.loads(encoded)
    return checked


def _keys(value: object) -> Iterator[str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _keys(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _keys(item)


def refusal_reason(exc: GaroupaError) -> str:
    """A refusal's message, short enough for an event's detail."""
    return exc.message[:MAX_REASON_CHARS]


@dataclass
class PendingEvent:
    """An event being recorded by `AuditTrail.recording`: the block fills in what it learns."""

    target: str | None
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditPage:
    """One page of events, newest first, and the cursor of the next (None at the end)."""

    events: Sequence[AuditEvent]
    next_cursor: str | None


def encode_cursor(created_at: datetime, event_id: int) -> str:
    """An opaque cursor for the events older than this one."""
    raw = json.dumps([created_at.astimezone(UTC).isoformat(), event_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (created_at, id) a cursor stands for; ValueError for anything this service did not
    issue."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, event_id = json.loads(raw)
        created_at = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise ValueError("not a cursor returned by this route") from None
    if type(event_id) is not int or created_at.tzinfo is None:
        raise ValueError("not a cursor returned by this route")
    return created_at, event_id


class AuditTrail:
    """Records events on their own and reads them back; bound to one session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def record(
        self,
        *,
        actor: str,
        action: AuditAction,
        target: str | None,
        outcome: AuditOutcome = AuditOutcome.success,
        detail: Mapping[str, object] | None = None,
    ) -> bool:
        """Insert and commit one event; a database failure is logged (never raised): False."""
        try:
            record_event(
                self._session,
                actor=actor,
                action=action,
                target=target,
                outcome=outcome,
                detail=detail,
            )
            self._session.commit()
        except SQLAlchemyError:
            self._session.rollback()
            # The event is in the log line instead, so the trail can be completed from it.
            logger.exception(
                "audit event not recorded",
                extra={
                    "actor": actor,
                    "action": str(action),
                    "target": target,
                    "outcome": str(outcome),
                    "detail": dict(detail or {}),
                },
            )
            return False
        return True

    @contextmanager
    def recording(
        self,
        *,
        actor: str,
        action: AuditAction,
        target: str | None = None,
        refusals: tuple[type[GaroupaError], ...] = (),
    ) -> Iterator[PendingEvent]:
        """Record the block's change once it has succeeded, or its refusal as a failure.

        Only the `refusals` are worth a failure event (a conflict, a quota); other
        errors (validation, not found) leave no trace here. The block's own
        transaction is rolled back before a failure is recorded.
        """
        event = PendingEvent(target=target)
        try:
            yield event
        except refusals as exc:
            self._session.rollback()
            self.record(
                actor=actor,
                action=action,
                target=event.target,
                outcome=AuditOutcome.failure,
                detail={**event.detail, "reason": refusal_reason(exc)},
            )
            raise
        self.record(actor=actor, action=action, target=event.target, detail=event.detail)

    def page(self, where: AuditFilter, *, limit: int, cursor: str | None = None) -> AuditPage:
        """Up to `limit` events matching `where`, newest first, after `cursor`."""
        before = decode_cursor(cursor) if cursor else None
        rows = crud.list_events(self._session, where, limit=limit + 1, before=before)
        events = rows[:limit]
        more = len(rows) > limit
        last = events[-1] if events else None
        next_cursor = encode_cursor(last.created_at, last.id) if more and last else None
        return AuditPage(events=events, next_cursor=next_cursor)
