"""Fixtures: real settings on a temporary SQLite file, the real app, real HTTP."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote_plus

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from app.core.config import Settings
from app.db.migrations import upgrade_database
from app.db.session import create_db_engine, create_session_factory
from app.main import create_app
from app.ml.dataset import SHIPPED_DATASET, read_csv
from app.services.clients import ClientRecord
from app.services.container import ServiceContainer
from app.services.models import ModelRegistry, SavedVersion
from app.services.training import TrainedModel, fit_model

TEST_SECRET_KEY = "test-signing-key-long-enough-for-hs512-too-0123456789abcdefghijklmn"
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"
TINY_CSV = REPO_ROOT / "tests" / "data" / "tiny.csv"
SHIPPED_CSV = SHIPPED_DATASET


# --- database backends: the whole suite runs on SQLite, then again on PostgreSQL -------------

POSTGRES_URL = os.environ.get(
    "GAROUPA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
_backend: dict[str, str] = {"name": "sqlite", "schema_url": ""}


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


@pytest.fixture(scope="session", autouse=True, params=["sqlite", "postgresql"])
def database_backend(request: pytest.FixtureRequest) -> str:
    """Which database this pass of the suite runs on."""
    if request.param == "postgresql":
        reason = postgres_unavailable_reason()
        if reason:
            pytest.skip(reason)
    _backend["name"] = request.param
    return str(request.param)


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
    if _backend["name"] == "postgresql":
        return _backend["schema_url"]
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(autouse=True)
def fresh_database(database_backend: str) -> Iterator[None]:
    """Every test starts from an empty database of the pass's backend."""
    if database_backend != "postgresql":
        yield
        return
    schema, url = new_postgres_schema()
    _backend["schema_url"] = url
    try:
        yield
    finally:
        drop_postgres_schema(schema)


_live_schemas: list[str] = []


def live_database_url(tmp_path: Path) -> str:
    """A database of its own for a live server (which may outlive one test)."""
    if _backend["name"] != "postgresql":
        return f"sqlite:///{tmp_path / 'live.db'}"
    schema, url = new_postgres_schema()
    _live_schemas.append(schema)
    return url


@pytest.fixture(scope="session", autouse=True)
def _drop_live_schemas() -> Iterator[None]:
    yield
    for schema in _live_schemas:
        drop_postgres_schema(schema)


# Modules whose tests never open a database: run once, in the SQLite pass.
NO_DATABASE_MODULES = {
    "test_preprocessing",
    "test_fast_path",
    "test_pipeline_quality",
    "test_shipped_data",
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


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings isolated from any `.env` and environment a developer has."""
    values: dict[str, object] = {
        "environment": "development",
        "secret_key": TEST_SECRET_KEY,
        "database_url": database_url_for(tmp_path),
        "data_dir": tmp_path / "data",
        "model_dir": tmp_path / "models",
        "jwt_issuer": "http://testserver",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


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


def install_model(
    settings: Settings, trained: TrainedModel, *, activate: bool = True
) -> SavedVersion:
    """Record `trained` as the next version in the settings' database and model dir."""
    engine = create_db_engine(settings.database_url)
    try:
        upgrade_database(engine)
        with create_session_factory(engine)() as session:
            return ModelRegistry(session, settings.model_dir).save(trained, activate=activate)
    finally:
        engine.dispose()


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


class Registry:
    """Registers clients straight through the service layer of a running app."""

    def __init__(self, app: FastAPI) -> None:
        self._services: ServiceContainer = app.state.services

    def add(
        self,
        client_id: str = "svc",
        secret: str = "correct-horse-battery",
        scopes: str = "predict train",
    ) -> ClientRecord:
        with self._services.sessions() as session:
            record, _ = self._services.client_service(session).register(
                name=f"{client_id} app", client_id=client_id, secret=secret, scopes=scopes
            )
        return record

    def deactivate(self, client_id: str) -> None:
        with self._services.sessions() as session:
            self._services.client_service(session).set_active(client_id, active=False)

    def activate(self, client_id: str) -> None:
        with self._services.sessions() as session:
            self._services.client_service(session).set_active(client_id, active=True)

    def rotate(self, client_id: str) -> str:
        with self._services.sessions() as session:
            return self._services.client_service(session).rotate_secret(client_id)

    def delete(self, client_id: str) -> None:
        with self._services.sessions() as session:
            self._services.client_service(session).delete(client_id)


@pytest.fixture
def registry(client: TestClient) -> Registry:
    return Registry(client.app)  # type: ignore[arg-type]


def basic_auth(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1 Basic credentials: form-encode, then base64."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def request_token(
    client: TestClient | httpx.Client,
    client_id: str = "svc",
    secret: str = "correct-horse-battery",
    *,
    scope: str | None = None,
    method: str = "post",
) -> httpx.Response:
    """POST /auth/token with client_secret_post or client_secret_basic."""
    data = {"grant_type": "client_credentials"}
    headers = {}
    if method == "post":
        data |= {"client_id": client_id, "client_secret": secret}
    else:
        headers["Authorization"] = basic_auth(client_id, secret)
    if scope is not None:
        data["scope"] = scope
    return client.post("/auth/token", data=data, headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_for(client: TestClient, client_id: str = "svc", **kwargs: object) -> str:
    response = request_token(client, client_id, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
