"""Near-duplicate product names: the same name once case, spaces and punctuation go.

"Susu Ultra Coklat 250ml", "susu ultra coklat 250 ml" and "SUSU ULTRA-COKLAT 250ML"
share the key "susuultracoklat250ml". The key is computed in SQL on both sides of
a comparison, so each backend agrees with itself: PostgreSQL with regexp_replace
(matching the partial expression index of migration 0008), SQLite with the
Python function below, registered on each of its connections.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, literal_column

SQLITE_FUNCTION = "garoupa_name_key"


def name_key(name: str | None) -> str | None:
    """The key of `name` (SQLite calls this for every row it compares)."""
    if name is None:
        return None
    return "".join(ch for ch in name.lower() if ch.isalnum())


def name_key_sql(dialect: str, name: Any) -> ColumnElement[str]:
    """The key of `name` (a column or a value) as SQL for `dialect`."""
    if dialect == "sqlite":
        return getattr(func, SQLITE_FUNCTION)(name)  # type: ignore[no-any-return]
    # Constants, not parameters: PostgreSQL uses the index only for the very expression.
    return func.regexp_replace(
        func.lower(name),
        literal_column("'[^[:alnum:]]+'"),
        literal_column("''"),
        literal_column("'g'"),
    )
