"""Bring a database to the newest schema with Alembic, safely from several processes."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from app.core.config import PROJECT_ROOT

logger = logging.getLogger(__name__)

ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
# Any constant shared by every process of every replica will do.
_PG_MIGRATION_LOCK = 0x6761726F


class SchemaNotCurrent(RuntimeError):
    """The database is not at the schema this code needs; the message says what to run."""


def _config() -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.attributes["configure_logger"] = False
    return config


def upgrade_database(engine: Engine) -> None:
    """Apply pending migrations; concurrent callers (CLIs, bootstrap) wait for each other."""
    config = _config()
    with _migration_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    # SQLite has no advisory locks; a lock file beside the database serialises
    # workers that start together so only one of them creates the tables.
    lock_path = Path(database).with_name(Path(database).name + ".migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def require_current_schema(engine: Engine) -> None:
    """SchemaNotCurrent unless the database is at this code's newest revision.

    Web workers and job processes call this instead of migrating: a schema change
    is a deliberate step (`make migrate`, `make run`, the CLIs), and a fleet of
    workers starting together must not race to apply it.
    """
    heads = set(ScriptDirectory.from_config(_config()).get_heads())
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if current == heads:
        return
    found = ", ".join(sorted(current)) or "no schema"
    raise SchemaNotCurrent(
        f"the database ({engine.url.render_as_string(hide_password=True)}) is at {found}; "
        f"this code needs {', '.join(sorted(heads))}. Run `make migrate` "
        "(or `python -m alembic upgrade head`) first."
    )
