"""The admin API over the client registry: scope, round trip, refusals, revocation, usage."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.services.audit import Actor
from app.services.clients import ClientService, LastActiveAdmin
from app.services.prediction_log import LogRow
from app.services.runtime import Runtime
from tests.support import Registry, bearer, request_token, token_for

REVOCATION_BOUND_SECONDS = 5.0

# Every admin operation, with a body that would be valid for it.
ADMIN_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/admin/clients", None),
    ("POST", "/admin/clients", {"name": "New App"}),
    ("GET", "/admin/clients/svc", None),
    ("PATCH", "/admin/clients/svc", {"name": "Renamed"}),
    ("DELETE", "/admin/clients/svc", None),
    ("POST", "/admin/clients/svc/rotate-secret", None),
    ("GET", "/admin/audit", None),
]


@pytest.fixture
def admin(client: TestClient, registry: Registry) -> dict[str, str]:
    """Headers of `root`, the one admin client (`svc`, a predict/train client, exists too)."""
    registry.add("root", scopes="admin")
    registry.add("svc")
    return bearer(token_for(client, "root"))


def runtime_of(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def create(client: TestClient, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/admin/clients", json=body, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_a_predict_client_gets_403_on_every_admin_route(
    client: TestClient,
    registry: Registry,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    registry.add("svc", scopes="predict train")
    headers = bearer(token_for(client, "svc"))
    response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "insufficient_scope"
    assert 'scope="admin"' in response.headers["www-authenticate"]
    # Nothing changed: svc still authenticates with its old secret.
    assert request_token(client, "svc").status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_admin_routes_need_a_token(
    client: TestClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="garoupa"'


def test_create_list_get_patch_rotate_delete_round_trip(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.post(
        "/admin/clients",
        json={"name": "Billing Service", "client_id": "billing", "scopes": ["predict"]},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["location"] == "/admin/clients/billing"
    created = response.json()
    assert created["client_id"] == "billing"
    assert created["scopes"] == ["predict"]
    assert created["active"] is True
    secret = created["client_secret"]
    assert len(secret) >= 43

    listed = client.get("/admin/clients", headers=admin).json()["clients"]
    assert [c["client_id"] for c in listed] == ["root", "svc", "billing"]
    billing = client.get("/admin/clients/billing", headers=admin).json()
    assert billing == next(c for c in listed if c["client_id"] == "billing")
    assert billing["usage"] == {
        "last_24h": {"requests": 0, "predictions": 0},
        "last_30d": {"requests": 0, "predictions": 0},
    }
    assert secret not in str(listed) + str(billing)

    patched = client.patch(
        "/admin/clients/billing",
        json={"name": "Billing (EU)", "scopes": "predict train", "active": False},
        headers=admin,
    )
    assert patched.status_code == 200, patched.text
    assert {k: patched.json()[k] for k in ("name", "scopes", "active")} == {
        "name": "Billing (EU)",
        "scopes": ["predict", "train"],
        "active": False,
    }

    rotated = client.post("/admin/clients/billing/rotate-secret", headers=admin)
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    assert rotated.json()["client_id"] == "billing"
    assert rotated.json()["client_secret"] != secret

    deleted = client.delete("/admin/clients/billing", headers=admin)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert client.get("/admin/clients/billing", headers=admin).status_code == 404


def test_the_created_secret_gets_a_token_and_a_rotated_one_replaces_it(
    client: TestClient, admin: dict[str, str]
) -> None:
    secret = create(client, admin, name="Worker", client_id="worker")["client_secret"]
    assert request_token(client, "worker", secret).status_code == 200

    response = client.post("/admin/clients/worker/rotate-secret", headers=admin)
    new_secret = response.json()["client_secret"]
    assert request_token(client, "worker", new_secret).status_code == 200
    old = request_token(client, "worker", secret)
    assert old.status_code == 401
    assert old.json()["error"] == "invalid_client"


def test_an_omitted_client_id_is_generated_from_the_name(
    client: TestClient, admin: dict[str, str]
) -> None:
    first = create(client, admin, name="Billing Service")
    second = create(client, admin, name="Billing Service")
    assert first["client_id"].startswith("billing-service-")
    assert second["client_id"].startswith("billing-service-")
    assert first["client_id"] != second["client_id"]
    assert request_token(client, first["client_id"], first["client_secret"]).status_code == 200


def test_a_name_without_letters_still_gets_a_readable_id(
    client: TestClient, admin: dict[str, str]
) -> None:
    assert create(client, admin, name="???")["client_id"].startswith("client-")


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (["predict"], ["predict"]),
        (["train", "predict"], ["predict", "train"]),
        ("admin predict", ["predict", "admin"]),
        ("  train  ", ["train"]),
    ],
)
def test_scopes_are_a_list_or_a_space_separated_string(
    client: TestClient, admin: dict[str, str], scopes: Any, expected: list[str]
) -> None:
    assert create(client, admin, name="Scoped", scopes=scopes)["scopes"] == expected


def test_omitted_scopes_are_the_cli_default(client: TestClient, admin: dict[str, str]) -> None:
    assert create(client, admin, name="Default")["scopes"] == ["predict", "train"]


def test_an_existing_client_id_is_409(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(
        "/admin/clients", json={"name": "Dup", "client_id": "svc"}, headers=admin
    )
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert request_token(client, "svc").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X", "scopes": ["predict", "everything"]}, "scopes"),
        ({"name": "X", "scopes": "predict root"}, "scopes"),
        ({"name": "X", "scopes": []}, "scopes"),
        ({"name": "X", "scopes": ["predict train"]}, "scopes"),
        ({"name": "bad\x00name"}, "name"),
        ({"name": "line\nbreak"}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 42}, "name"),
        ({"name": "X", "client_id": "c" * 129}, "client_id"),
        ({"name": "X", "client_id": " padded"}, "client_id"),
        ({"name": "X", "client_id": "tab\tid"}, "client_id"),
        ({"name": "X", "client_secret": "chosen-secret-123"}, "client_secret"),
        ({}, "name"),
    ],
)
def test_bad_create_fields_are_422_naming_the_field(
    client: TestClient, admin: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = client.post("/admin/clients", json=body, headers=admin)
    assert response.status_code == 422, response.text
    fields = {tuple(e["loc"][:2]) for e in response.json()["detail"]}
    assert ("body", field) in fields, response.json()
    listed = client.get("/admin/clients", headers=admin).json()["clients"]
    assert [c["client_id"] for c in listed] == ["root", "svc"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body"]),
        ({"name": None, "scopes": None, "active": None}, ["body"]),
        ({"active": "no"}, ["body", "active"]),
        ({"scopes": "predict everything"}, ["body", "scopes"]),
        ({"secret": "x"}, ["body", "secret"]),
    ],
)
def test_bad_patches_are_422(
    client: TestClient, admin: dict[str, str], body: dict[str, Any], loc: list[str]
) -> None:
    response = client.patch("/admin/clients/svc", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert loc in [e["loc"] for e in response.json()["detail"]], response.json()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/admin/clients/ghost", None),
        ("PATCH", "/admin/clients/ghost", {"active": False}),
        ("DELETE", "/admin/clients/ghost", None),
        ("POST", "/admin/clients/ghost/rotate-secret", None),
    ],
)
def test_an_unknown_client_is_404(
    client: TestClient, admin: dict[str, str], method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = client.request(method, path, json=body, headers=admin)
    assert response.status_code == 404
    assert response.json() == {"detail": "No client with id 'ghost'."}


def test_a_client_id_with_a_slash_is_reachable_percent_encoded(
    client: TestClient, admin: dict[str, str]
) -> None:
    create(client, admin, name="Team", client_id="team/a")
    assert client.get("/admin/clients/team%2Fa", headers=admin).json()["client_id"] == "team/a"
    rotated = client.post("/admin/clients/team%2Fa/rotate-secret", headers=admin)
    assert rotated.json()["client_id"] == "team/a"


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("PATCH", {"active": False}),
        ("PATCH", {"scopes": ["predict"]}),
        ("DELETE", None),
    ],
)
def test_an_admin_cannot_deactivate_delete_or_demote_itself(
    client: TestClient,
    registry: Registry,
    admin: dict[str, str],
    method: str,
    body: dict[str, Any] | None,
) -> None:
    registry.add("ops", scopes="admin")  # another admin: only the self rule applies
    response = client.request(method, "/admin/clients/root", json=body, headers=admin)
    assert response.status_code == 409
    assert "itself" in response.json()["detail"]
    root = client.get("/admin/clients/root", headers=admin).json()
    assert root["active"] is True and root["scopes"] == ["admin"]


def test_an_admin_may_still_rename_itself(client: TestClient, admin: dict[str, str]) -> None:
    response = client.patch("/admin/clients/root", json={"name": "Root"}, headers=admin)
    assert response.status_code == 200
    assert response.json()["name"] == "Root"


def test_an_admin_may_demote_another_admin(
    client: TestClient, registry: Registry, admin: dict[str, str]
) -> None:
    registry.add("ops", scopes="admin predict")
    response = client.patch("/admin/clients/ops", json={"scopes": "predict"}, headers=admin)
    assert response.status_code == 200
    assert client.delete("/admin/clients/ops", headers=admin).status_code == 204


@pytest.mark.parametrize("change", ["deactivate", "delete", "set_scopes"])
def test_the_last_active_admin_cannot_be_removed(
    client: TestClient, registry: Registry, change: str
) -> None:
    # Through the API the acting admin is itself an active admin, so this rule guards the
    # CLI and a caller whose own admin rights went a moment ago (a token not yet refused).
    registry.add("root", scopes="admin")
    registry.add("gone", scopes="admin")
    registry.deactivate("gone")  # an inactive admin does not count
    runtime = runtime_of(client)
    with runtime.session() as session:
        clients = ClientService(session, runtime.hasher)
        actor = Actor(name="former-admin", client_id="former-admin")
        with pytest.raises(LastActiveAdmin, match="last active client with the admin scope"):
            if change == "deactivate":
                clients.set_active("root", active=False, actor=actor)
            elif change == "delete":
                clients.delete("root", actor=actor)
            else:
                clients.set_scopes("root", "predict train", actor=actor)
        root = clients.get("root")
    assert root.is_active and [s.value for s in root.scopes] == ["admin"]


def test_two_admins_removed_at_once_leave_one(client: TestClient, registry: Registry) -> None:
    # Each change alone is allowed (another admin remains); together they must not be.
    registry.add("left", scopes="admin")
    registry.add("right", scopes="admin predict")
    runtime = runtime_of(client)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def remove(client_id: str) -> None:
        with runtime.session() as session:
            clients = ClientService(session, runtime.hasher)
            barrier.wait()
            try:
                if client_id == "left":
                    clients.set_active(client_id, active=False, actor=Actor(name="cli:ops"))
                else:
                    clients.set_scopes(client_id, "predict", actor=Actor(name="cli:ops"))
                outcomes[client_id] = "done"
            except LastActiveAdmin:
                outcomes[client_id] = "refused"

    threads = [threading.Thread(target=remove, args=(c,)) for c in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes.values()) == ["done", "refused"], outcomes
    with runtime.session() as session:
        remaining = [
            c.client_id
            for c in ClientService(session, runtime.hasher).list()
            if c.is_active and "admin" in c.scopes
        ]
    assert remaining == [next(c for c, o in outcomes.items() if o == "refused")]


def test_deactivation_through_the_api_revokes_outstanding_tokens(
    client: TestClient, admin: dict[str, str]
) -> None:
    secret = create(client, admin, name="Trainer", client_id="trainer", scopes=["train"])[
        "client_secret"
    ]
    token = token_for(client, "trainer", secret=secret)
    assert client.get("/training/", headers=bearer(token)).status_code == 200

    patched = client.patch("/admin/clients/trainer", json={"active": False}, headers=admin)
    assert patched.status_code == 200
    started = time.monotonic()
    while client.get("/training/", headers=bearer(token)).status_code == 200:
        assert time.monotonic() - started < 3 * REVOCATION_BOUND_SECONDS, "token still accepted"
        time.sleep(0.1)
    assert time.monotonic() - started < REVOCATION_BOUND_SECONDS
    refused = client.get("/training/", headers=bearer(token))
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_token"
    assert request_token(client, "trainer", secret).status_code == 401


def _row(client_id: str, at: datetime, request_id: str | None, item: int) -> LogRow:
    name = f"name {request_id} {item}"
    return (at.timestamp(), client_id, "v1.0.0", name, "Susu", 0.9, False, True) + (
        request_id,
        item,
        1.0,
    )


def test_usage_counts_come_from_the_prediction_log(
    client: TestClient, registry: Registry, admin: dict[str, str]
) -> None:
    registry.add("quiet", scopes="predict")
    now = datetime.now(UTC)
    hour_ago, days_ago = now - timedelta(hours=1), now - timedelta(days=3)
    long_ago = now - timedelta(days=40)
    rows = [_row("svc", hour_ago, "req-batch", item) for item in range(3)]  # one request
    rows += [
        _row("svc", hour_ago - timedelta(minutes=5), "req-one", 0),
        _row("svc", hour_ago - timedelta(minutes=6), None, 0),  # logged without an id
        *(_row("svc", days_ago, "req-old-batch", item) for item in range(2)),
        _row("svc", long_ago, "req-ancient", 0),  # outside both windows
        _row("root", days_ago, "req-root", 0),
    ]
    # Through the log's writer, as served predictions are: rows and daily sums together.
    runtime_of(client).prediction_log.write_batch(rows)

    clients = {
        c["client_id"]: c for c in client.get("/admin/clients", headers=admin).json()["clients"]
    }
    assert clients["svc"]["usage"] == {
        "last_24h": {"requests": 3, "predictions": 5},
        "last_30d": {"requests": 4, "predictions": 7},
    }
    assert clients["root"]["usage"]["last_30d"] == {"requests": 1, "predictions": 1}
    assert clients["quiet"]["usage"]["last_30d"] == {"requests": 0, "predictions": 0}
    # svc never took a token: last seen is its latest prediction; root's token is later.
    assert datetime.fromisoformat(clients["svc"]["last_seen"]) == hour_ago
    assert clients["root"]["last_seen"] == clients["root"]["last_used_at"]
    assert clients["quiet"]["last_seen"] is None
    one = client.get("/admin/clients/svc", headers=admin).json()
    assert one == clients["svc"]


def test_admin_routes_declare_their_scope_and_errors(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        ("get", "/admin/clients"): {"401", "403", "429"},
        ("post", "/admin/clients"): {"401", "403", "409", "422", "429"},
        ("get", "/admin/clients/{client_id}"): {"401", "403", "404", "422", "429"},
        ("patch", "/admin/clients/{client_id}"): {"401", "403", "404", "409", "422", "429"},
        ("delete", "/admin/clients/{client_id}"): {"401", "403", "404", "409", "422", "429"},
        ("post", "/admin/clients/{client_id}/rotate-secret"): {"401", "403", "404", "422", "429"},
        ("get", "/admin/audit"): {"401", "403", "422", "429"},
    }
    for (method, path), codes in expected.items():
        operation = paths[path][method]
        assert operation["security"] == [{"OAuth2ClientCredentials": ["admin"]}], path
        assert operation["tags"] == ["admin"]
        assert operation["summary"], path
        assert codes <= set(operation["responses"]), (method, path)


def test_audit_page_parameters_are_validated_naming_the_field(
    client: TestClient, admin: dict[str, str]
) -> None:
    cases = {
        "limit": [{"limit": 0}, {"limit": 501}, {"limit": "many"}],
        "since": [{"since": "2026-12-01T00:00:00"}, {"since": "yesterday"}],
        "until": [{"until": "2026-12-01"}],
        "cursor": [{"cursor": "not-a-cursor"}, {"cursor": "WzEsMl0"}],
        "action": [{"action": "client.explode"}],
        "outcome": [{"outcome": "maybe"}],
        "colour": [{"colour": "blue"}],
    }
    for field, queries in cases.items():
        for params in queries:
            response = client.get("/admin/audit", params=params, headers=admin)
            assert response.status_code == 422, (params, response.text)
            assert ["query", field] in [e["loc"] for e in response.json()["detail"]], params


def test_audit_page_limits_at_the_bounds_are_accepted(
    client: TestClient, admin: dict[str, str]
) -> None:
    for limit in (1, 500):
        response = client.get("/admin/audit", params={"limit": limit}, headers=admin)
        assert response.status_code == 200
        assert len(response.json()["events"]) <= limit
