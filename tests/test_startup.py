"""What happens before the first request: importing does nothing, servers refuse a stale schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from app.core.config import Settings
from app.db.migrations import head_revisions
from app.db.schema import SCHEMA_HEAD, SchemaNotCurrent, current_revisions
from app.main import create_app
from tests.support import REPO_ROOT, make_settings

# Run in a fresh interpreter from a folder holding a `.env` that would break the
# settings if anything read it, with no metrics directory configured.
_PROBE = """
import json, logging, os, sys
handlers = list(logging.getLogger().handlers)
import app.main
print(json.dumps({
    "prometheus_client": "prometheus_client" in sys.modules,
    "metrics_dir": os.environ.get("PROMETHEUS_MULTIPROC_DIR"),
    "log_handlers_untouched": logging.getLogger().handlers == handlers,
}))
"""


def test_importing_the_app_reads_no_env_file_and_sets_nothing_up(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ENVIRONMENT=not-an-environment\nRATE_LIMIT_PREDICT=nonsense\n")
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["prometheus_client"] is False
    assert seen["metrics_dir"] is None
    assert seen["log_handlers_untouched"] is True


def test_the_schemas_do_not_load_scikit_learn(tmp_path: Path) -> None:
    probe = (
        "import sys, app.schemas.prediction, app.schemas.training; print('sklearn' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_uvicorn_gets_the_app_on_first_access(tmp_path: Path) -> None:
    # `uvicorn app.main:app` looks the attribute up; the module builds it then.
    result = subprocess.run(
        [sys.executable, "-c", "import app.main; print(type(app.main.app).__name__)"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "SECRET_KEY": "x" * 40},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "FastAPI"


@pytest.fixture
def unmigrated(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def test_a_server_refuses_a_database_without_the_schema(unmigrated: Settings) -> None:
    with (
        pytest.raises(SchemaNotCurrent, match=r"no schema.*make migrate"),
        TestClient(create_app(unmigrated)),
    ):
        pass


def test_the_schema_a_server_needs_is_alembics_newest_revision() -> None:
    assert head_revisions() == {SCHEMA_HEAD}


def test_a_server_starts_once_the_database_is_migrated(unmigrated: Settings) -> None:
    migrate = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "DATABASE_URL": unmigrated.database_url,
            "SECRET_KEY": unmigrated.secret_key or "",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    engine = create_engine(unmigrated.database_url)
    try:
        assert current_revisions(engine) == {SCHEMA_HEAD}
    finally:
        engine.dispose()
    with TestClient(create_app(unmigrated)) as client:
        assert client.get("/health").json() == {"status": "ok"}
