"""Settings: production refuses to start with a weak SECRET_KEY, with a one-line reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.config import EXAMPLE_SECRET_KEY, ConfigurationError, load_settings
from tests.support import REPO_ROOT


def _start_app(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    environment |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", **env}
    return subprocess.run(
        [sys.executable, "-c", "import app.main; app.main.app"],
        env=environment,
        # A directory without .env, so only the variables above count.
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "secret,reason",
    [
        (None, "SECRET_KEY is not set"),
        ("short-key", "shorter than 32 bytes"),
        (EXAMPLE_SECRET_KEY, "example value"),
    ],
)
def test_production_refuses_weak_secret_with_one_line(
    tmp_path: Path, secret: str | None, reason: str
) -> None:
    env = {"ENVIRONMENT": "production", "PYTHONPATH": str(REPO_ROOT)}
    if secret is not None:
        env["SECRET_KEY"] = secret
    result = _start_app(tmp_path, **env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert reason in lines[0]
    assert "Traceback" not in result.stderr


def test_production_starts_with_strong_secret(tmp_path: Path) -> None:
    result = _start_app(
        tmp_path,
        ENVIRONMENT="production",
        SECRET_KEY="a" * 16 + "b" * 16 + "c" * 8,
        PYTHONPATH=str(REPO_ROOT),
    )
    assert result.returncode == 0, result.stderr


def test_development_accepts_missing_secret() -> None:
    settings = load_settings(_env_file=None, environment="development")
    assert settings.secret_key is None


def test_load_settings_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        load_settings(_env_file=None, environment="production", secret_key="x" * 10)


def test_env_example_lists_every_setting() -> None:
    from app.core.config import Settings

    listed = {
        line.split("=", 1)[0]
        for line in (REPO_ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert listed == {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan", "high"])
def test_review_threshold_outside_0_to_1_stops_start_up(tmp_path: Path, value: str) -> None:
    started = _start_app(tmp_path, REVIEW_THRESHOLD=value, PYTHONPATH=str(REPO_ROOT))
    assert started.returncode == 1
    assert "REVIEW_THRESHOLD" in started.stderr.upper(), started.stderr
    assert "Traceback" not in started.stderr


def test_empty_review_threshold_means_each_versions_own() -> None:
    settings = load_settings(_env_file=None, environment="development", review_threshold=None)
    assert settings.review_threshold is None
