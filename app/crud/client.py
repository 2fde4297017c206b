"""SQL for the client registry. The calling service owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, delete, false, select, update
from sqlalchemy.orm import Session

from app.db.models import Client


def get_client(session: Session, *, client_id: str) -> Client | None:
    """The client with this id, or None."""
    return session.scalars(select(Client).where(Client.client_id == client_id)).one_or_none()


def list_clients(session: Session) -> Sequence[Client]:
    """Every client, oldest first."""
    return session.scalars(select(Client).order_by(Client.created_at, Client.id)).all()


def lock_active_clients(session: Session) -> Sequence[Client]:
    """Every active client, locked until the transaction ends (PostgreSQL), in id order.

    Taken before a change that may remove an admin, so that two such changes run
    one after the other and the second sees the first. One order for every
    caller: no deadlock.
    """
    if session.get_bind().dialect.name == "sqlite":
        # A write that matches nothing still takes SQLite's write lock, and waits for it,
        # before anything is read: the read below then sees the latest commit.
        session.execute(
            update(Client).where(false()).values(is_active=Client.is_active),
            execution_options={"synchronize_session": False},
        )
    query = select(Client).where(Client.is_active.is_(True)).order_by(Client.id).with_for_update()
    return session.scalars(query).all()


def create_client(
    session: Session,
    *,
    client_id: str,
    name: str,
    secret_hash: str,
    scopes: str,
    now: datetime,
    tokens_valid_after: datetime,
) -> Client:
    """Stage a new active client."""
    client = Client(
        client_id=client_id,
        name=name,
        secret_hash=secret_hash,
        scopes=scopes,
        is_active=True,
        created_at=now,
        tokens_valid_after=tokens_valid_after,
    )
    session.add(client)
    return client


def delete_client(session: Session, *, client_id: str) -> bool:
    """Delete the client; True when a row went away."""
    result = session.execute(delete(Client).where(Client.client_id == client_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def revocation_rows(session: Session) -> Sequence[Row[str, bool, datetime]]:
    """(client_id, is_active, tokens_valid_after) for every client: what token checks need."""
    return session.execute(
        select(Client.client_id, Client.is_active, Client.tokens_valid_after)
    ).all()
