"""scripts/manage_clients.py run as a subprocess against a temporary database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, database_url_for

SCRIPT = REPO_ROOT / "scripts" / "manage_clients.py"


class Cli:
    def __init__(self, database_url: str) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "ENVIRONMENT": "development",
        }

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(SCRIPT), *args],
            env=self.env,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO_ROOT,
        )

    def clients(self) -> dict[str, dict[str, object]]:
        result = self("list", "--json")
        assert result.returncode == 0, result.stderr
        return {c["client_id"]: c for c in json.loads(result.stdout)}


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(database_url_for(tmp_path))


def test_help_is_available_for_every_command(cli: Cli) -> None:
    for command in (
        "add",
        "list",
        "show",
        "deactivate",
        "activate",
        "rotate-secret",
        "set-scopes",
        "delete",
    ):
        result = cli(command, "--help")
        assert result.returncode == 0
        assert "usage:" in result.stdout and command in result.stdout


def test_add_with_original_readme_syntax(cli: Cli) -> None:
    result = cli("add", "My Test App", "testclient01", "supersecret123")
    assert result.returncode == 0, result.stderr
    assert "testclient01" in result.stdout
    assert "supersecret123" not in result.stdout
    client = cli.clients()["testclient01"]
    assert client["name"] == "My Test App"
    assert client["scopes"] == "predict train"
    assert client["active"] is True


def test_add_without_secret_prints_a_generated_one_once(cli: Cli) -> None:
    result = cli("add", "Generated", "gen01", "--scopes", "predict")
    assert result.returncode == 0, result.stderr
    secret_line = next(line for line in result.stdout.splitlines() if "secret:" in line.lower())
    secret = secret_line.split(":", 1)[1].strip()
    assert len(secret) >= 43  # 32 random bytes, URL-safe base64
    assert secret not in cli("show", "gen01").stdout
    assert secret not in cli("list").stdout


def test_add_refuses_short_secret(cli: Cli) -> None:
    result = cli("add", "Short", "short01", "too-short")
    assert result.returncode == 1
    assert "at least 12" in result.stderr
    assert "short01" not in cli.clients()


def test_add_refuses_duplicate_id(cli: Cli) -> None:
    assert cli("add", "One", "dup01", "supersecret123").returncode == 0
    result = cli("add", "Two", "dup01", "anothersecret123")
    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert cli.clients()["dup01"]["name"] == "One"


def test_add_refuses_unknown_scope(cli: Cli) -> None:
    result = cli("add", "Bad", "bad01", "supersecret123", "--scopes", "predict everything")
    assert result.returncode == 1
    assert "everything" in result.stderr
    assert "bad01" not in cli.clients()


def test_list_shows_a_table(cli: Cli) -> None:
    cli("add", "Table App", "table01", "supersecret123")
    result = cli("list")
    assert result.returncode == 0
    assert "table01" in result.stdout and "Table App" in result.stdout


def test_list_on_empty_registry(cli: Cli) -> None:
    result = cli("list")
    assert result.returncode == 0
    assert "No clients" in result.stdout
    assert cli("list", "--json").stdout.strip() == "[]"


def test_show_unknown_client_fails(cli: Cli) -> None:
    result = cli("show", "ghost")
    assert result.returncode == 1
    assert "ghost" in result.stderr


def test_deactivate_and_activate(cli: Cli) -> None:
    cli("add", "Toggle", "toggle01", "supersecret123")
    assert cli("deactivate", "toggle01").returncode == 0
    assert cli.clients()["toggle01"]["active"] is False
    assert cli("activate", "toggle01").returncode == 0
    assert cli.clients()["toggle01"]["active"] is True


@pytest.mark.parametrize(
    "command", [("deactivate",), ("activate",), ("rotate-secret",), ("set-scopes",), ("delete",)]
)
def test_commands_on_unknown_id_exit_1(cli: Cli, command: tuple[str, ...]) -> None:
    extra = ["predict"] if command == ("set-scopes",) else []
    extra += ["--yes"] if command == ("delete",) else []
    result = cli(*command, "ghost", *extra)
    assert result.returncode == 1
    assert "ghost" in result.stderr


def test_rotate_secret_prints_new_secret_and_moves_revocation_time(cli: Cli) -> None:
    cli("add", "Rotate", "rot01", "supersecret123")
    before = cli.clients()["rot01"]["tokens_valid_after"]
    result = cli("rotate-secret", "rot01")
    assert result.returncode == 0
    assert "secret:" in result.stdout.lower()
    assert cli.clients()["rot01"]["tokens_valid_after"] > before  # type: ignore[operator]


def test_set_scopes(cli: Cli) -> None:
    cli("add", "Scoped", "scope01", "supersecret123")
    assert cli("set-scopes", "scope01", "admin predict").returncode == 0
    assert cli.clients()["scope01"]["scopes"] == "predict admin"
    result = cli("set-scopes", "scope01", "root")
    assert result.returncode == 1
    assert cli.clients()["scope01"]["scopes"] == "predict admin"


def test_delete_asks_and_refuses_without_confirmation(cli: Cli) -> None:
    cli("add", "Keep", "keep01", "supersecret123")
    result = cli("delete", "keep01", stdin="n\n")
    assert result.returncode == 1
    assert "keep01" in cli.clients()


def test_delete_with_confirmation(cli: Cli) -> None:
    cli("add", "Gone", "gone01", "supersecret123")
    assert cli("delete", "gone01", stdin="y\n").returncode == 0
    assert "gone01" not in cli.clients()


def test_delete_with_yes_flag(cli: Cli) -> None:
    cli("add", "Gone", "gone02", "supersecret123")
    assert cli("delete", "gone02", "--yes").returncode == 0
    assert "gone02" not in cli.clients()


def test_unreachable_database_is_a_one_line_error(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'missing-dir' / 'nested' / 'x.db'}")
    cli.env["DATABASE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    result = cli("list")
    assert result.returncode == 1
    assert result.stderr.startswith("error:")
    assert "Traceback" not in result.stderr
