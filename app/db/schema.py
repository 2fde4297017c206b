"""Which schema this code needs, and the check every server and job process makes.

Kept apart from `migrations` so a web worker never imports Alembic (about 11 MB
of memory per worker, paid only by the processes that migrate). The newest
revision is written here once per migration; a test compares it with Alembic's
own head, so the two cannot drift apart.
"""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

# The newest revision under alembic/versions; bump it with every new migration.
SCHEMA_HEAD = "0012"
# Alembic's bookkeeping table (its default name, which alembic/env.py keeps).
_VERSION_TABLE = "alembic_version"


class SchemaNotCurrent(RuntimeError):
    """The database is not at the schema this code needs; the message says what to run."""


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the database records; empty when it has no schema yet."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(_VERSION_TABLE):
            return set()
        rows = connection.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}"))
        return {str(row[0]) for row in rows}


def require_current_schema(engine: Engine) -> None:
    """SchemaNotCurrent unless the database is at this code's newest revision.

    Web workers and job processes call this instead of migrating: a schema change
    is a deliberate step (`make migrate`, `make run`, the CLIs), and a fleet of
    workers starting together must not race to apply it.
    """
    current = current_revisions(engine)
    if current == {SCHEMA_HEAD}:
        return
    found = ", ".join(sorted(current)) or "no schema"
    raise SchemaNotCurrent(
        f"the database ({engine.url.render_as_string(hide_password=True)}) is at {found}; "
        f"this code needs {SCHEMA_HEAD}. Run `make migrate` "
        "(or `python -m alembic upgrade head`) first."
    )
