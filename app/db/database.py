"""One way to open the database: an engine, its session factory and the schema check."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.db.schema import require_current_schema
from app.db.session import create_db_engine, create_session_factory


@dataclass(frozen=True)
class Database:
    """An engine and the sessions bound to it; `dispose()` (or `with`) releases both."""

    engine: Engine
    sessions: sessionmaker[Session]

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.dispose()


def open_database(database_url: str, *, migrate: bool) -> Database:
    """Connect to `database_url`; apply pending migrations, or require none to be pending.

    `migrate=True` is for the deliberate entry points (bootstrap, the CLIs, tests'
    fixtures); servers and job processes pass False and refuse a stale schema.
    """
    engine = create_db_engine(database_url)
    try:
        if migrate:
            # Imported here: Alembic is for the processes that migrate, not servers.
            from app.db.migrations import upgrade_database

            upgrade_database(engine)
        else:
            require_current_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return Database(engine, create_session_factory(engine))
