"""Attacks on the token endpoint, its logs and the files the service creates (issue 10).

Each test performs the attack the security review demonstrated and checks that it
now fails: raced guesses, memory exhaustion through parallel Argon2 checks, a busy
address locking out correct clients, forged log lines, readable secret files.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import stat
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.config import Settings
from app.core.errors import TemporarilyUnavailable, TooManyAttempts
from app.core.logging import TextFormatter, build_formatter, flush_logs, output_handler
from app.core.security import build_secret_hasher
from app.db.migrations import upgrade_database
from app.db.session import create_db_engine, create_session_factory
from app.services.clients import ClientService
from app.services.login_guard import LoginGuard
from app.services.runtime import Runtime
from tests.support import REPO_ROOT, InProcess, Registry, make_settings, request_token, serve

WRONG = "wrong-secret-value"


def _app_client(tmp_path: Path, **overrides: object) -> Iterator[TestClient]:
    with serve(make_settings(tmp_path, **overrides)) as test_client:
        yield test_client


def _runtime(client: TestClient) -> Runtime:
    return InProcess(client).runtime


def _in_parallel(count: int, call: object) -> list[int]:
    """Status codes of `count` calls started together from as many threads."""
    barrier = threading.Barrier(count)
    codes: list[int] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        barrier.wait()
        status = call(index)  # type: ignore[operator]
        with lock:
            codes.append(status)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return codes


class TestRacedGuesses:
    @pytest.fixture
    def client(self, tmp_path: Path) -> Iterator[TestClient]:
        # Enough slots for all sixteen to verify at once: only the guard may stop them.
        yield from _app_client(
            tmp_path,
            auth_failure_limit="10/5minutes",
            auth_failure_limit_per_address="1000/5minutes",
            max_concurrent_secret_checks=16,
        )

    def test_sixteen_parallel_wrong_guesses_for_one_id_get_at_most_ten_401(
        self, client: TestClient, registry: Registry
    ) -> None:
        registry.add()
        codes = Counter(_in_parallel(16, lambda _: request_token(client, "svc", WRONG).status_code))
        # Exactly the limit reached Argon2; the rest were turned away before it:
        # 429 once the failures were counted, 503 while they were still in flight.
        assert codes[401] == 10
        assert set(codes) <= {401, 429, 503} and codes.total() == 16

    def test_after_raced_guesses_even_the_right_secret_waits_out_the_window(
        self, client: TestClient, registry: Registry
    ) -> None:
        registry.add()
        _in_parallel(16, lambda _: request_token(client, "svc", WRONG).status_code)
        response = request_token(client)
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) > 1

    def test_parallel_successes_are_never_counted_as_failures(
        self, client: TestClient, registry: Registry
    ) -> None:
        registry.add()
        codes = Counter(_in_parallel(16, lambda _: request_token(client).status_code))
        # Beyond ten in flight at once, an outcome is awaited (503, retry in 1 s) ...
        assert codes[200] >= 10 and set(codes) <= {200, 503}
        # ... but none was counted: the id is far from its failure limit.
        assert [request_token(client).status_code for _ in range(12)] == [200] * 12


class TestSecretCheckBound:
    @pytest.fixture
    def client(self, tmp_path: Path) -> Iterator[TestClient]:
        yield from _app_client(tmp_path, max_concurrent_secret_checks=1)

    def _add_slow_client(self, client: TestClient) -> None:
        # A real Argon2id hash with a high time cost: verifying it holds the only
        # slot for about a second, long enough to observe, with no mock involved.
        slow = PasswordHash((Argon2Hasher(time_cost=30),))
        with _runtime(client).session() as session:
            ClientService(session, slow).register(
                name="Slow", client_id="slow", secret="slow-secret-value", scopes="predict"
            )

    def test_a_check_beyond_the_bound_gets_503_with_retry_after(
        self, client: TestClient, registry: Registry
    ) -> None:
        registry.add()
        self._add_slow_client(client)
        slots = _runtime(client).login_guard.slots
        held: list[int] = []
        holder = threading.Thread(
            target=lambda: held.append(request_token(client, "slow", WRONG).status_code)
        )
        holder.start()
        deadline = time.monotonic() + 10
        while slots.in_use == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert slots.in_use == 1

        response = request_token(client)  # correct credentials, but no slot free

        assert response.status_code == 503, response.text
        assert response.json()["error"] == "temporarily_unavailable"
        assert response.json()["error_description"]
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["cache-control"] == "no-store"
        holder.join(timeout=60)
        assert held == [401]
        assert slots.in_use == 0
        assert request_token(client).status_code == 200

    def test_a_turned_away_attempt_is_not_counted_as_a_failure(self) -> None:
        guard = LoginGuard(per_client="1/minute", per_address="100/minute", max_concurrent_checks=1)
        with guard.attempt("a", "10.0.0.1"):
            with pytest.raises(TemporarilyUnavailable):
                with guard.attempt("b", "10.0.0.1"):
                    pass
        # "b" never reached verification: its one allowed failure is still there.
        with guard.attempt("b", "10.0.0.1") as attempt:
            attempt.failed()
        with pytest.raises(TooManyAttempts):
            with guard.attempt("b", "10.0.0.1"):
                pass


class TestHotAddress:
    @pytest.fixture
    def client(self, tmp_path: Path) -> Iterator[TestClient]:
        yield from _app_client(
            tmp_path, auth_failure_limit="10/5minutes", auth_failure_limit_per_address="30/5minutes"
        )

    def test_forty_failures_from_one_address_do_not_lock_out_a_correct_client(
        self, client: TestClient, registry: Registry
    ) -> None:
        registry.add()
        codes = [request_token(client, f"guess-{i}", WRONG).status_code for i in range(40)]
        # Spraying ids is answered 429 once the address is hot ...
        assert codes == [401] * 30 + [429] * 10
        # ... but a neighbour behind the same NAT presenting the right secret is served.
        response = request_token(client)
        assert response.status_code == 200, response.text


class TestHotAddressLimits:
    @pytest.fixture
    def client(self, tmp_path: Path) -> Iterator[TestClient]:
        # Small limits: the same behaviour as the defaults, in fewer Argon2 runs.
        yield from _app_client(
            tmp_path, auth_failure_limit="3/5minutes", auth_failure_limit_per_address="5/5minutes"
        )

    def test_from_a_hot_address_unknown_wrong_and_inactive_still_look_alike(
        self, client: TestClient, registry: Registry
    ) -> None:
        registry.add(client_id="active")
        registry.add(client_id="sleeping")
        registry.deactivate("sleeping")
        for i in range(5):
            request_token(client, f"guess-{i}", WRONG)
        answers = [
            request_token(client, "nobody"),
            request_token(client, "active", WRONG),
            request_token(client, "sleeping"),
        ]
        assert {r.status_code for r in answers} == {429}
        assert len({r.text for r in answers}) == 1

    def test_the_per_id_limit_still_holds_from_a_hot_address(
        self, client: TestClient, registry: Registry
    ) -> None:
        registry.add()
        for i in range(5):
            request_token(client, f"guess-{i}", WRONG)
        codes = [request_token(client, "svc", WRONG).status_code for _ in range(5)]
        assert codes == [429] * 5
        # Three of those were verified and counted against the id: it is now locked.
        assert request_token(client).status_code == 429

    def test_a_hot_address_verifies_one_secret_at_a_time(self) -> None:
        guard = LoginGuard(per_client="100/minute", per_address="1/minute", max_concurrent_checks=4)
        with guard.attempt("x", "10.0.0.9") as attempt:
            assert not attempt.hot
            attempt.failed()  # the address's one allowed failure: it is hot from now on
        with guard.attempt("a", "10.0.0.9") as first:
            assert first.hot
            with pytest.raises(TemporarilyUnavailable):
                with guard.attempt("b", "10.0.0.9"):
                    pass
            with guard.attempt("c", "10.0.0.10") as elsewhere:
                assert not elsewhere.hot


class TestLogInjection:
    # No spaces: a value with none was logged unquoted and unescaped.
    FORGED = "x\n2026-12-01\tINFO\tapp.services.auth:\ttoken\tissued\tclient_id=admin"
    ANSI = "\x1b[2J\x1b[31mred\x1b[0m\r\u2028\x85"

    @pytest.fixture
    def captured(self, client: TestClient) -> Iterator[io.StringIO]:
        """The app's own configured log handler, writing into a buffer."""
        buffer = io.StringIO()
        handler = output_handler()
        assert isinstance(handler, logging.StreamHandler)
        previous = handler.setStream(buffer)
        yield buffer
        if previous is not None:
            handler.setStream(previous)

    @pytest.fixture(params=["text", "json"])
    def client(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
        yield from _app_client(tmp_path, log_format=request.param, log_level="INFO")

    def test_a_client_id_with_a_newline_and_ansi_escapes_stays_one_log_line(
        self, client: TestClient, captured: io.StringIO
    ) -> None:
        client_id = self.FORGED + self.ANSI
        assert request_token(client, client_id, WRONG).status_code == 401
        flush_logs()
        output = captured.getvalue()
        refused = [line for line in output.splitlines() if "token refused" in line]
        assert len(refused) == 1, output
        assert not [line for line in output.splitlines() if line.startswith("2026-12-01\t")]
        for char in ("\x1b", "\r", "\u2028", "\x85"):
            assert char not in output
        if output.lstrip().startswith("{"):
            assert json.loads(refused[0])["client_id"] == client_id
        else:
            assert "\\n2026-12-01\\tINFO" in refused[0] and "\\x1b[2J" in refused[0]


def test_text_log_traceback_lines_cannot_pass_for_records() -> None:
    try:
        raise ValueError("bad\n2026-12-01 03:00:00,000 INFO forged: token issued")
    except ValueError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "boom\nforged", None, sys.exc_info()
        )
    lines = TextFormatter().format(record).splitlines()
    assert "boom\\nforged" in lines[0]
    assert all(line.startswith("    ") for line in lines[1:])
    assert len(lines) > 2


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_uvicorns_colour_only_copy_of_a_message_is_not_logged(log_format: str) -> None:
    # uvicorn repeats its start-up messages with ANSI colours as `color_message`,
    # for its own console handler; ours must not print that copy as a field.
    formatter = build_formatter(Settings(_env_file=None, log_format=log_format))
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, "Started server process [%d]", (42,), None
    )
    record.color_message = "Started server process [\x1b[36m%d\x1b[0m]"
    line = formatter.format(record)
    assert "Started server process [42]" in line
    assert "color_message" not in line and "36m" not in line


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A permissive umask, as on many desktops, so only the code keeps files private."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("open_umask")
class TestPrivateFiles:
    def test_a_new_sqlite_database_is_created_0600(
        self, tmp_path: Path, database_backend: str
    ) -> None:
        if database_backend != "sqlite":
            pytest.skip("SQLite files only")
        path = tmp_path / "garoupa.db"
        engine = create_db_engine(f"sqlite:///{path}")
        try:
            upgrade_database(engine)
            with create_session_factory(engine)() as session:
                ClientService(session, build_secret_hasher()).register(
                    name="App", client_id="app", secret="supersecret123"
                )
            assert _mode(path) == 0o600
            wal = tmp_path / "garoupa.db-wal"
            if wal.exists():
                assert _mode(wal) == 0o600
        finally:
            engine.dispose()

    def test_bootstrap_creates_env_and_demo_credentials_0600_from_the_start(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_backend: str
    ) -> None:
        bootstrap = _load_bootstrap()
        monkeypatch.setattr(bootstrap, "ENV_FILE", tmp_path / ".env")
        monkeypatch.setattr(bootstrap, "DEMO_CREDENTIALS", tmp_path / ".demo-client.json")
        monkeypatch.delenv("SECRET_KEY", raising=False)
        # No chmod after the fact: the files must be private the moment they exist.
        monkeypatch.setattr(Path, "chmod", lambda *args, **kwargs: None)
        monkeypatch.setattr(os, "chmod", lambda *args, **kwargs: None)
        bootstrap.ensure_env_file()
        settings = make_settings(tmp_path)
        engine = create_db_engine(settings.database_url)
        try:
            upgrade_database(engine)
            with create_session_factory(engine)() as session:
                bootstrap.ensure_demo_client(ClientService(session, build_secret_hasher()))
        finally:
            engine.dispose()
        assert _mode(tmp_path / ".env") == 0o600
        assert "SECRET_KEY=" in (tmp_path / ".env").read_text()
        assert _mode(tmp_path / ".demo-client.json") == 0o600
        assert json.loads((tmp_path / ".demo-client.json").read_text())["client_secret"]

    def test_bootstrap_makes_an_existing_readable_env_private_before_adding_the_key(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        bootstrap = _load_bootstrap()
        env = tmp_path / ".env"
        env.write_text("LOG_LEVEL=DEBUG")
        env.chmod(0o644)
        monkeypatch.setattr(bootstrap, "ENV_FILE", env)
        monkeypatch.delenv("SECRET_KEY", raising=False)
        bootstrap.ensure_env_file()
        assert _mode(env) == 0o600
        assert env.read_text().startswith("LOG_LEVEL=DEBUG\n")


def _load_bootstrap() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "garoupa_bootstrap", REPO_ROOT / "scripts" / "bootstrap.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
