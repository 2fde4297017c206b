"""The audit trail: what is recorded, by whom, through the API and the CLI; append-only; paging."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError

from app.core.config import Settings
from app.crud import audit as audit_crud
from app.db.models import AuditEvent
from app.db.session import create_db_engine, create_session_factory
from app.ml.training import TrainedModel
from app.services.audit import AuditAction, AuditTrail, operator_name, record_event
from app.services.runtime import Runtime
from tests.support import (
    REPO_ROOT,
    Api,
    Registry,
    bearer,
    csv_bytes,
    database_url_for,
    install_model,
    make_settings,
    shipped_rows,
    token_for,
)

SCRIPT = REPO_ROOT / "scripts" / "manage_clients.py"


def runtime_of(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def read_events(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = client.get("/admin/audit", params=params, headers=headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


@pytest.fixture
def admin(client: TestClient, registry: Registry) -> dict[str, str]:
    registry.add("root", scopes="admin")
    return bearer(token_for(client, "root"))


# --- through the admin API -----------------------------------------------------------------


def test_client_changes_through_the_api_are_recorded_as_the_acting_client(
    client: TestClient, admin: dict[str, str]
) -> None:
    created = client.post(
        "/admin/clients", json={"name": "Billing", "client_id": "billing"}, headers=admin
    ).json()
    client.patch(
        "/admin/clients/billing",
        json={"name": "Billing EU", "scopes": ["predict"], "active": False},
        headers=admin,
    )
    client.patch("/admin/clients/billing", json={"active": True}, headers=admin)
    rotated = client.post("/admin/clients/billing/rotate-secret", headers=admin).json()
    assert client.delete("/admin/clients/billing", headers=admin).status_code == 204

    events = read_events(client, admin, target="billing")
    assert [e["action"] for e in events] == [
        "client.delete",
        "client.rotate_secret",
        "client.activate",
        "client.deactivate",
        "client.set_scopes",
        "client.update",
        "client.create",
    ]
    assert {e["actor"] for e in events} == {"root"}
    assert {e["outcome"] for e in events} == {"success"}
    by_action = {e["action"]: e for e in events}
    assert by_action["client.create"]["detail"] == {"name": "Billing", "scopes": "predict train"}
    assert by_action["client.set_scopes"]["detail"] == {"from": "predict train", "to": "predict"}
    assert by_action["client.update"]["detail"] == {"name": {"from": "Billing", "to": "Billing EU"}}
    # Newest first, and never a secret.
    stamps = [e["created_at"] for e in events]
    assert stamps == sorted(stamps, reverse=True)
    trail = json.dumps(events)
    assert created["client_secret"] not in trail
    assert rotated["client_secret"] not in trail


def test_a_change_to_the_current_value_records_nothing(
    client: TestClient, registry: Registry, admin: dict[str, str]
) -> None:
    registry.add("svc", scopes="predict train")
    response = client.patch(
        "/admin/clients/svc", json={"scopes": "train predict", "active": True}, headers=admin
    )
    assert response.status_code == 200
    assert read_events(client, admin, target="svc", actor="root") == []


def test_a_refused_self_demotion_is_recorded_as_a_failure(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.patch("/admin/clients/root", json={"active": False}, headers=admin)
    assert response.status_code == 409
    [event] = read_events(client, admin, actor="root")
    assert event["action"] == "client.deactivate"
    assert event["target"] == "root"
    assert event["outcome"] == "failure"
    assert "itself" in event["detail"]["reason"]
    assert read_events(client, admin, outcome="failure") == [event]


def test_filters_select_events(
    client: TestClient, registry: Registry, admin: dict[str, str]
) -> None:
    registry.add("svc")
    client.patch("/admin/clients/svc", json={"name": "Service"}, headers=admin)
    everything = read_events(client, admin)
    assert [e["action"] for e in everything] == ["client.update", "client.create", "client.create"]
    assert [e["target"] for e in read_events(client, admin, action="client.create")] == [
        "svc",
        "root",
    ]
    assert len(read_events(client, admin, actor=operator_name())) == 2
    assert read_events(client, admin, target="nobody") == []
    newest = datetime.fromisoformat(everything[0]["created_at"])
    assert read_events(client, admin, since=everything[0]["created_at"]) == everything[:1]
    assert read_events(client, admin, until=everything[0]["created_at"]) == everything[1:]
    # With a time zone offset (the `+` encoded by the client library).
    later = (newest + timedelta(hours=1)).astimezone(datetime.now().astimezone().tzinfo).isoformat()
    assert read_events(client, admin, since=later) == []


# --- pagination --------------------------------------------------------------------------------


def test_cursor_pagination_walks_every_event_exactly_once(
    client: TestClient, admin: dict[str, str]
) -> None:
    base = datetime.now(UTC) - timedelta(hours=1)
    with runtime_of(client).session() as session:
        for n in range(23):
            # Groups of three share a timestamp: the id breaks the tie.
            audit_crud.insert_event(
                session,
                created_at=base + timedelta(seconds=n // 3),
                actor="walker",
                action=AuditAction.dataset_upload.value,
                target=f"file-{n}",
                outcome="success",
                detail=None,
            )
        session.commit()

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"actor": "walker", "limit": 5}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/admin/audit", params=params, headers=admin).json()
        pages += 1
        assert len(body["events"]) <= 5
        seen += body["events"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert sorted(e["target"] for e in seen) == sorted(f"file-{n}" for n in range(23))
    assert len({e["id"] for e in seen}) == 23
    keys = [(e["created_at"], e["id"]) for e in seen]
    assert keys == sorted(keys, reverse=True)


def test_the_last_full_page_has_no_next_cursor(client: TestClient, admin: dict[str, str]) -> None:
    body = client.get("/admin/audit", params={"limit": 1}, headers=admin).json()
    assert len(body["events"]) == 1
    assert body["next_cursor"] is None


# --- the table itself --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        update(AuditEvent).values(outcome="success", actor="someone else"),
        delete(AuditEvent),
    ],
    ids=["update", "delete"],
)
def test_the_audit_log_refuses_updates_and_deletes(
    client: TestClient, registry: Registry, statement: Any
) -> None:
    registry.add("svc")
    with runtime_of(client).session() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(statement)
            session.commit()
        session.rollback()
        [event] = session.query(AuditEvent).all()
    assert (event.actor, event.action, event.target) == (
        operator_name(),
        "client.create",
        "svc",
    )


def test_an_orm_edit_of_a_recorded_event_is_refused(client: TestClient, registry: Registry) -> None:
    registry.add("svc")
    with runtime_of(client).session() as session:
        event = session.query(AuditEvent).one()
        event.outcome = "failure"
        with pytest.raises(DBAPIError, match="append-only"):
            session.commit()


def test_a_detail_key_that_looks_like_a_secret_is_refused(
    client: TestClient,
) -> None:
    with runtime_of(client).session() as session:
        for key in ("client_secret", "access_token", "password", "secret_hash"):
            with pytest.raises(ValueError, match="secret"):
                record_event(
                    session,
                    actor="root",
                    action=AuditAction.client_create,
                    target="x",
                    detail={"nested": {key: "value"}},
                )


def test_a_failed_audit_insert_is_logged_and_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database without the audit table: the insert fails for real.
    engine = create_db_engine(f"sqlite:///{tmp_path / 'no-audit.db'}")
    try:
        with create_session_factory(engine)() as session:
            with caplog.at_level(logging.ERROR, logger="app.services.audit"):
                recorded = AuditTrail(session).record(
                    actor="root",
                    action=AuditAction.model_activate,
                    target="v1.0.1",
                    detail={"previous": "v1.0.0"},
                )
    finally:
        engine.dispose()
    assert recorded is False
    [record] = [r for r in caplog.records if r.getMessage() == "audit event not recorded"]
    assert record.exc_info is not None
    assert record.__dict__["action"] == "model.activate"
    assert record.__dict__["target"] == "v1.0.1"


# --- model activation, training start, dataset upload -------------------------------------------


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    """For conftest's `api`: room for one upload per client, so the second is refused."""
    return make_settings(tmp_path, upload_quota_files=1)


@pytest.fixture
def api_admin(api: Api) -> dict[str, str]:
    Registry(api.client.app).add("root", scopes="admin")  # type: ignore[arg-type]
    return bearer(token_for(api.client, "root"))


def test_model_activation_is_recorded_and_a_refused_one_as_a_failure(
    api: Api, api_admin: dict[str, str], tiny_model: TrainedModel
) -> None:
    second = install_model(api.settings, tiny_model, activate=False).version
    assert api.post(f"/models/{second}/activate").status_code == 200
    (api.settings.model_dir / "v1.0.0.joblib").write_bytes(b"altered")
    assert api.post("/models/v1.0.0/activate").status_code == 409
    assert api.post("/models/v9.9.9/activate").status_code == 404  # not worth a record

    refused, activated = read_events(api.client, api_admin, action="model.activate")
    assert (activated["actor"], activated["target"], activated["outcome"]) == (
        "svc",
        second,
        "success",
    )
    assert activated["detail"] == {"previous": "v1.0.0"}
    assert (refused["target"], refused["outcome"]) == ("v1.0.0", "failure")
    assert "SHA-256" in refused["detail"]["reason"]
    assert refused["detail"]["previous"] == second


def test_a_training_start_is_recorded_and_a_refused_one_as_a_failure(
    api: Api, api_admin: dict[str, str]
) -> None:
    accepted = api.train(activate=False)
    # The first job's process has barely started: one job at a time.
    assert api.post("/training/", json={"activate": False}).status_code == 409

    refused, started = read_events(api.client, api_admin, action="training.start")
    assert (started["actor"], started["target"], started["outcome"]) == (
        "svc",
        accepted["job_id"],
        "success",
    )
    assert started["detail"]["new_model_version"] == accepted["new_model_version"]
    assert started["detail"]["data_path"] is None
    assert refused["outcome"] == "failure"
    assert accepted["job_id"] in refused["detail"]["reason"]


def test_a_dataset_upload_is_recorded_and_one_over_the_quota_as_a_failure(
    api: Api, api_admin: dict[str, str]
) -> None:
    data = csv_bytes(shipped_rows("Teh", 6) + shipped_rows("Kopi", 6))
    upload = api.post("/datasets/", files={"file": ("teh kopi.csv", data, "text/csv")})
    assert upload.status_code == 201, upload.text
    over = api.post("/datasets/", files={"file": ("again.csv", data, "text/csv")})
    assert over.status_code == 413

    refused, stored = read_events(api.client, api_admin, action="dataset.upload")
    assert (stored["actor"], stored["target"], stored["outcome"]) == (
        "svc",
        upload.json()["data_path"],
        "success",
    )
    assert stored["detail"] == {
        "filename": "teh kopi.csv",
        "size_bytes": len(data),
        "rows": 12,
        "sha256": upload.json()["sha256"],
    }
    assert (refused["target"], refused["outcome"]) == (None, "failure")
    assert refused["detail"]["filename"] == "again.csv"
    assert "quota" in refused["detail"]["reason"]


# --- manage_clients.py, in-process ------------------------------------------------------------


@pytest.fixture
def manage_clients(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The script as a module, acting on this test's database (as DATABASE_URL names it)."""
    monkeypatch.setenv("DATABASE_URL", database_url_for(tmp_path))
    monkeypatch.setenv("ENVIRONMENT", "development")
    spec = importlib.util.spec_from_file_location("garoupa_manage_clients_audit", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # main() narrows the umask for the files it creates; the test process keeps its own.
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        yield module
    finally:
        os.umask(umask)


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(manage_clients: ModuleType, capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code: int = manage_clients.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def cli_events(cli: Cli, *argv: str) -> list[dict[str, Any]]:
    code, out, err = cli("audit", "--json", *argv)
    assert code == 0, err
    events: list[dict[str, Any]] = json.loads(out)
    return events


def test_cli_changes_are_recorded_as_the_os_user(cli: Cli) -> None:
    assert cli("add", "Billing", "billing", "supersecret123")[0] == 0
    assert cli("set-scopes", "billing", "predict")[0] == 0
    assert cli("deactivate", "billing")[0] == 0
    assert cli("activate", "billing")[0] == 0
    code, rotated, _ = cli("rotate-secret", "billing")
    assert code == 0
    assert cli("delete", "billing", "--yes")[0] == 0

    events = cli_events(cli)
    assert [e["action"] for e in events] == [
        "client.delete",
        "client.rotate_secret",
        "client.activate",
        "client.deactivate",
        "client.set_scopes",
        "client.create",
    ]
    assert {e["actor"] for e in events} == {operator_name()}
    assert operator_name().startswith("cli:")
    assert {e["target"] for e in events} == {"billing"}
    new_secret = rotated.split("Client secret:", 1)[1].split()[0]
    assert "supersecret123" not in json.dumps(events)
    assert new_secret not in json.dumps(events)


def test_cli_refuses_to_remove_the_last_admin_unless_forced(cli: Cli) -> None:
    assert cli("add", "Root", "root", "supersecret123", "--scopes", "admin")[0] == 0
    for argv in (
        ("deactivate", "root"),
        ("delete", "root", "--yes"),
        ("set-scopes", "root", "predict"),
    ):
        code, _, err = cli(*argv)
        assert code == 1, argv
        assert "last active client with the admin scope" in err
        assert "--force" in err
    code, out, err = cli("deactivate", "root", "--force")
    assert code == 0, err

    events = cli_events(cli, "--actor", operator_name())
    assert [(e["action"], e["outcome"]) for e in events] == [
        ("client.deactivate", "success"),
        ("client.set_scopes", "failure"),
        ("client.delete", "failure"),
        ("client.deactivate", "failure"),
        ("client.create", "success"),
    ]
    assert events[0]["detail"] == {"forced": True}


def test_cli_audit_filters_and_limits(cli: Cli) -> None:
    for client_id in ("one", "two", "three"):
        assert cli("add", client_id.title(), client_id, "supersecret123")[0] == 0
    assert cli("deactivate", "two")[0] == 0
    assert [e["target"] for e in cli_events(cli, "--action", "client.create")] == [
        "three",
        "two",
        "one",
    ]
    assert [e["target"] for e in cli_events(cli, "--limit", "2")] == ["two", "three"]
    assert cli_events(cli, "--actor", "somebody-else") == []


def test_cli_audit_prints_a_table(cli: Cli) -> None:
    code, out, _ = cli("audit")
    assert (code, out.strip()) == (0, "No audit events recorded yet.")
    cli("add", "Table", "table01", "supersecret123")
    code, out, _ = cli("audit")
    assert code == 0
    assert "client.create" in out and "table01" in out and operator_name() in out


def test_cli_audit_refuses_a_bad_limit_or_action(cli: Cli) -> None:
    for argv in (("--limit", "0"), ("--action", "client.explode")):
        with pytest.raises(SystemExit) as exit_info:
            cli("audit", *argv)
        assert exit_info.value.code == 2


def test_api_and_cli_changes_share_one_trail(
    client: TestClient, admin: dict[str, str], cli: Cli
) -> None:
    assert cli("add", "Ops", "ops", "supersecret123", "--scopes", "predict")[0] == 0
    client.patch("/admin/clients/ops", json={"name": "Ops team"}, headers=admin)
    events = read_events(client, admin, target="ops")
    assert [(e["action"], e["actor"]) for e in events] == [
        ("client.update", "root"),
        ("client.create", operator_name()),
    ]
    assert [e["action"] for e in cli_events(cli, "--actor", "root")] == ["client.update"]


def test_an_os_user_without_a_name_is_recorded_by_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_name() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr("getpass.getuser", no_name)
    assert operator_name() == f"cli:uid-{os.getuid()}"
