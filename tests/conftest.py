"""Fixtures: real settings on a temporary SQLite file, the real app, real HTTP.

Only fixtures and hooks live here; the helpers they use are in `tests/support/`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.db.database import open_database
from app.main import create_app
from app.ml.dataset import read_csv
from app.ml.training import TrainedModel, fit_model
from tests.support import (
    BACKEND,
    LIVE_SCHEMAS,
    SHIPPED_CSV,
    TINY_CSV,
    Api,
    Registry,
    drop_postgres_schema,
    make_settings,
    new_postgres_schema,
    open_api,
    postgres_unavailable_reason,
)

# --- database backends: the whole suite runs on SQLite, then again on PostgreSQL -------------


@pytest.fixture(scope="session", autouse=True, params=["sqlite", "postgresql"])
def database_backend(request: pytest.FixtureRequest) -> str:
    """Which database this pass of the suite runs on."""
    if request.param == "postgresql":
        reason = postgres_unavailable_reason()
        if reason:
            pytest.skip(reason)
    BACKEND["name"] = request.param
    return str(request.param)


@pytest.fixture(autouse=True)
def fresh_database(database_backend: str) -> Iterator[None]:
    """Every test starts from an empty database of the pass's backend."""
    if database_backend != "postgresql":
        yield
        return
    schema, url = new_postgres_schema()
    BACKEND["schema_url"] = url
    try:
        yield
    finally:
        drop_postgres_schema(schema)


@pytest.fixture(scope="session", autouse=True)
def _drop_live_schemas() -> Iterator[None]:
    yield
    for schema in LIVE_SCHEMAS:
        drop_postgres_schema(schema)


# Modules whose tests never open a database: run once, in the SQLite pass.
NO_DATABASE_MODULES = {
    "test_logging",
    "test_memory",
    "test_preprocessing",
    "test_fast_path",
    "test_fast_batch",
    "test_pipeline_quality",
    "test_shipped_data",
    "test_scope",
    "test_calibration_folds",
    # Its train.py subprocess has a SQLite database of its own, whatever the pass.
    "test_training_scaling_bench",
    "test_training_parallel",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that never touch a database run in the SQLite pass only."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database_backend") if callspec else None
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if backend == "postgresql" and module in NO_DATABASE_MODULES:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# --- the app under test -----------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def tiny_model() -> TrainedModel:
    """The real pipeline fitted once on the 78-row fixture (6 categories)."""
    return fit_model(read_csv(TINY_CSV))


@pytest.fixture(scope="session")
def shipped_model() -> TrainedModel:
    """The real pipeline fitted once on the shipped data/products.csv."""
    return fit_model(read_csv(SHIPPED_CSV))


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """The app on `settings`, its database migrated (servers only check the schema)."""
    open_database(settings.database_url, migrate=True).dispose()
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def registry(client: TestClient) -> Registry:
    return Registry(client.app)  # type: ignore[arg-type]


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    """The settings `api` runs on; a module overrides this fixture to change them."""
    return make_settings(tmp_path)


@pytest.fixture
def api_server_exceptions() -> bool:
    """Whether `api` lets an app exception reach the test (False: the client sees a 500)."""
    return True


@pytest.fixture
def api(
    api_settings: Settings, tiny_model: TrainedModel, api_server_exceptions: bool
) -> Iterator[Api]:
    """The app on `api_settings`, the tiny model active, client `svc` and its token."""
    raising = api_server_exceptions
    with open_api(api_settings, tiny_model, raise_server_exceptions=raising) as opened:
        yield opened
