"""The database of a test (SQLite file or PostgreSQL schema), its settings and its model."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from app.core.config import Settings
from app.db.database import open_database
from app.ml.training import TrainedModel
from app.services.models import ModelRegistry, SavedVersion
from tests.support.paths import TEST_SECRET_KEY

POSTGRES_URL = os.environ.get(
    "GAROUPA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# The pass under way (set by conftest's `database_backend` and `fresh_database` fixtures).
BACKEND: dict[str, str] = {"name": "sqlite", "schema_url": ""}
# Schemas of live servers, dropped at the end of the session.
LIVE_SCHEMAS: list[str] = []


def postgres_unavailable_reason() -> str | None:
    """Why the PostgreSQL pass cannot run here, or None when a server answers."""
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError:
        return f"no PostgreSQL server answers at {POSTGRES_URL} (set GAROUPA_TEST_POSTGRES_URL)"
    finally:
        engine.dispose()
    return None


def new_postgres_schema() -> tuple[str, str]:
    """A fresh, empty schema: (its name, a DATABASE_URL whose search_path is it)."""
    schema = f"garoupa_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return schema, f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


def drop_postgres_schema(schema: str) -> None:
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def database_url_for(tmp_path: Path) -> str:
    """This test's database: a file under tmp_path, or this test's PostgreSQL schema."""
    if BACKEND["name"] == "postgresql":
        return BACKEND["schema_url"]
    return f"sqlite:///{tmp_path / 'test.db'}"


def live_database_url(tmp_path: Path) -> str:
    """A database of its own for a live server (which may outlive one test)."""
    if BACKEND["name"] != "postgresql":
        return f"sqlite:///{tmp_path / 'live.db'}"
    schema, url = new_postgres_schema()
    LIVE_SCHEMAS.append(schema)
    return url


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings isolated from any `.env` and environment a developer has."""
    values: dict[str, object] = {
        "environment": "development",
        "secret_key": TEST_SECRET_KEY,
        "database_url": database_url_for(tmp_path),
        "data_dir": tmp_path / "data",
        "model_dir": tmp_path / "models",
        "jwt_issuer": "http://testserver",
        # The limits the suite runs under, stated rather than inherited: the shipped
        # defaults. Tests that poll wait out a 429's Retry-After (tests/polling.py)
        # instead of assuming a slow machine stays under them.
        "rate_limit_predict": "6000/minute",
        "rate_limit_train": "120/minute",
        "rate_limit_feedback": "60/minute",
        "auth_failure_limit": "10/5minutes",
        "auth_failure_limit_per_address": "30/5minutes",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def install_model(
    settings: Settings, trained: TrainedModel, *, activate: bool = True
) -> SavedVersion:
    """Record `trained` as the next version in the settings' database and model dir."""
    with (
        open_database(settings.database_url, migrate=True) as database,
        database.sessions() as session,
    ):
        return ModelRegistry(session, settings.model_dir).save(trained, activate=activate)
