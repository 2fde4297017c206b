"""scripts/manage_clients.py run as a subprocess against a temporary database."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.errors import InvalidClient
from app.core.security import build_secret_hasher
from app.db.session import create_db_engine, create_session_factory
from app.services.clients import ClientService
from tests.support import REPO_ROOT, database_url_for, readme_bash_block

SCRIPT = REPO_ROOT / "scripts" / "manage_clients.py"


def build_parser() -> argparse.ArgumentParser:
    """The script's own parser, loaded from its file."""
    spec = importlib.util.spec_from_file_location("garoupa_manage_clients", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parser: argparse.ArgumentParser = module.build_parser()
    return parser


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
        "rename",
        "deactivate",
        "activate",
        "rotate-secret",
        "set-scopes",
        "delete",
        "audit",
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
    "command",
    [("deactivate",), ("activate",), ("rotate-secret",), ("set-scopes",), ("rename",), ("delete",)],
)
def test_commands_on_unknown_id_exit_1(cli: Cli, command: tuple[str, ...]) -> None:
    extra = ["predict"] if command == ("set-scopes",) else []
    extra += ["New Name"] if command == ("rename",) else []
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


def test_rename_changes_the_name_only_and_is_audited(cli: Cli) -> None:
    cli("add", "Old Name", "ren01", "supersecret123")
    before = cli.clients()["ren01"]
    result = cli("rename", "ren01", "Billing Service")
    assert result.returncode == 0, result.stderr
    after = cli.clients()["ren01"]
    assert after["name"] == "Billing Service"
    # A new name is not a security change: scopes stay and tokens are not revoked.
    assert after["scopes"] == before["scopes"]
    assert after["tokens_valid_after"] == before["tokens_valid_after"]
    refused = cli("rename", "ren01", "bad\x1bname")
    assert refused.returncode == 1 and "printable" in refused.stderr
    assert cli.clients()["ren01"]["name"] == "Billing Service"
    audit = json.loads(cli("audit", "--action", "client.update", "--json").stdout)
    assert audit[0]["target"] == "ren01" and audit[0]["outcome"] == "success"


def test_the_last_admin_client_is_kept_unless_forced(cli: Cli) -> None:
    cli("add", "Root", "root01", "supersecret123", "--scopes", "admin")
    result = cli("deactivate", "root01")
    assert result.returncode == 1
    assert "last active client with the admin scope" in result.stderr
    assert "--force" in result.stderr
    assert cli.clients()["root01"]["active"] is True
    assert cli("deactivate", "root01", "--force").returncode == 0
    assert cli.clients()["root01"]["active"] is False


def test_audit_lists_the_changes_made_here(cli: Cli) -> None:
    cli("add", "Audited", "audit01", "supersecret123")
    cli("deactivate", "audit01")
    result = cli("audit", "--json")
    assert result.returncode == 0, result.stderr
    events = json.loads(result.stdout)
    assert [(e["action"], e["target"]) for e in events] == [
        ("client.deactivate", "audit01"),
        ("client.create", "audit01"),
    ]
    assert all(e["actor"].startswith("cli:") for e in events)


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


def _authenticates(database_url: str, client_id: str, secret: str) -> bool:
    engine = create_db_engine(database_url)
    try:
        with create_session_factory(engine)() as session:
            ClientService(session, build_secret_hasher()).authenticate(client_id, secret)
        return True
    except InvalidClient:
        return False
    finally:
        engine.dispose()


def test_add_reads_the_secret_from_stdin(cli: Cli) -> None:
    # As `printf '%s' "$S" | manage_clients.py add ... --secret-stdin`: no newline.
    result = cli("add", "My App", "myapp", "--secret-stdin", stdin="piped-secret-value-123")
    assert result.returncode == 0, result.stderr
    assert "piped-secret-value-123" not in result.stdout + result.stderr
    assert _authenticates(cli.env["DATABASE_URL"], "myapp", "piped-secret-value-123")


def test_secret_stdin_drops_only_the_line_ending(cli: Cli) -> None:
    result = cli("add", "My App", "myapp", "--secret-stdin", stdin=" spaced secret 123 \r\n")
    assert result.returncode == 0, result.stderr
    assert _authenticates(cli.env["DATABASE_URL"], "myapp", " spaced secret 123 ")


def test_secret_stdin_works_in_a_shell_pipeline(cli: Cli) -> None:
    result = subprocess.run(
        [
            "bash",
            "-c",
            f"printf '%s' \"$S\" | {sys.executable} {SCRIPT} add 'My App' myapp --secret-stdin",
        ],
        env={**cli.env, "S": "pipeline-secret-value"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert _authenticates(cli.env["DATABASE_URL"], "myapp", "pipeline-secret-value")


def test_secret_stdin_and_a_positional_secret_together_are_refused(cli: Cli) -> None:
    result = cli(
        "add", "Both", "both01", "supersecret123", "--secret-stdin", stdin="other123456789"
    )
    assert result.returncode == 1
    assert "either" in result.stderr
    assert "both01" not in cli.clients()


def test_secret_stdin_with_empty_input_is_refused(cli: Cli) -> None:
    result = cli("add", "Empty", "empty01", "--secret-stdin", stdin="")
    assert result.returncode == 1
    assert "no secret" in result.stderr
    assert "empty01" not in cli.clients()


def test_rotate_secret_reads_the_new_secret_from_stdin(cli: Cli) -> None:
    cli("add", "Rotate", "rot02", "supersecret123")
    result = cli("rotate-secret", "rot02", "--secret-stdin", stdin="rotated-secret-value\n")
    assert result.returncode == 0, result.stderr
    assert "rotated-secret-value" not in result.stdout
    url = cli.env["DATABASE_URL"]
    assert _authenticates(url, "rot02", "rotated-secret-value")
    assert not _authenticates(url, "rot02", "supersecret123")


def test_every_option_and_argument_has_help(cli: Cli) -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.dest} has no help text"


def test_a_database_the_cli_creates_is_private(tmp_path: Path, database_backend: str) -> None:
    if database_backend != "sqlite":
        pytest.skip("SQLite files only")
    path = tmp_path / "fresh.db"
    previous = os.umask(0o022)  # the child inherits a permissive umask
    try:
        result = Cli(f"sqlite:///{path}")("add", "App", "app01", "supersecret123")
    finally:
        os.umask(previous)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_readme_cli_examples_run_as_written(cli: Cli) -> None:
    script = readme_bash_block("cli-examples")
    script = script.replace("python scripts/", f"{sys.executable} scripts/")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**cli.env, "BILLING_SECRET": "billing-batch-secret-0123"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    clients = cli.clients()
    # The example deletes `billing` at the end and keeps the client added through stdin.
    assert "billing" not in clients
    assert clients["billing-batch"]["scopes"] == "predict"
    assert _authenticates(cli.env["DATABASE_URL"], "billing-batch", "billing-batch-secret-0123")
