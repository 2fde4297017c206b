"""Engine and session factories."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from app.db.name_key import SQLITE_FUNCTION, name_key


def create_db_engine(database_url: str) -> Engine:
    """An engine for `database_url`; SQLite gets WAL, foreign keys and a busy timeout."""
    if database_url.startswith("sqlite"):
        _create_private_sqlite_file(database_url)
        engine = create_engine(
            database_url, connect_args={"check_same_thread": False, "timeout": 15}
        )
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(database_url, pool_pre_ping=True)


def _create_private_sqlite_file(database_url: str) -> None:
    """Create a missing SQLite file as 0600 before SQLite would create it world-readable.

    The database holds client secret hashes. SQLite gives its -wal and -shm files
    the database file's mode, so they are private too. An existing file is left
    as the operator set it.
    """
    url = make_url(database_url)
    path = url.database
    if not path or path == ":memory:" or path.startswith("file:") or url.query.get("uri"):
        return
    target = Path(path)
    if target.exists() or not target.parent.is_dir():
        # A missing folder is SQLite's error to report, with the URL in it.
        return
    try:
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process created it first, under the same rule
    except OSError:
        return  # e.g. a read-only folder: SQLite's own error says it better
    os.close(descriptor)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (every worker's revocation refresh) proceed during a write.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # The review queue groups near-duplicate names by this key (app/db/name_key.py).
    dbapi_connection.create_function(SQLITE_FUNCTION, 1, name_key, deterministic=True)


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
