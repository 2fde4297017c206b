"""The bearer dependency: RFC 6750 answers for missing, invalid, revoked and under-scoped tokens."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from app.core.config import key_id
from tests.conftest import TEST_SECRET_KEY, Registry, bearer, token_for

PREDICT = {"product_name": "susu ultra coklat 250ml"}


def forge(claims: dict[str, Any] | None = None, *, drop: str | None = None, **header: Any) -> str:
    """A token signed like ours, with chosen claims, header fields or a claim removed."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": "http://testserver",
        "sub": "svc",
        "client_id": "svc",
        "aud": "garoupa-api",
        "iat": now,
        "exp": now + 600,
        "jti": "forged-token-id",
        "scope": "predict train",
    }
    payload.update(claims or {})
    if drop:
        payload.pop(drop)
    headers = {"typ": "at+jwt", "kid": key_id(TEST_SECRET_KEY)} | header
    key = headers.pop("key", TEST_SECRET_KEY)
    algorithm = headers.pop("alg", "HS256")
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def assert_invalid_token(response: Any) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="garoupa"')
    assert 'error="invalid_token"' in challenge
    assert "error_description=" in challenge
    assert response.json()["error"] == "invalid_token"


def test_request_without_token_gets_bare_challenge(client: TestClient) -> None:
    response = client.post("/predict/", json=PREDICT)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="garoupa"'
    assert response.json() == {"detail": "Not authenticated"}


def test_token_in_query_string_is_ignored(client: TestClient, registry: Registry) -> None:
    registry.add()
    token = token_for(client)
    response = client.post(f"/predict/?access_token={token}", json=PREDICT)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="garoupa"'


def test_other_auth_scheme_counts_as_no_token(client: TestClient) -> None:
    response = client.post("/predict/", json=PREDICT, headers={"Authorization": "Basic eDp5"})
    assert response.status_code == 401
    assert "error=" not in response.headers["www-authenticate"]


def test_valid_token_passes_authentication(client: TestClient, registry: Registry) -> None:
    registry.add()
    response = client.post("/predict/", json=PREDICT, headers=bearer(token_for(client)))
    # No model is trained in this fixture: authentication passed, the model is missing.
    assert response.status_code == 503
    assert "python train.py" in response.json()["detail"]


def test_forged_token_with_our_key_is_accepted(client: TestClient, registry: Registry) -> None:
    # Guards the attack tests below: they differ from this token in one respect each.
    registry.add()
    assert client.post("/predict/", json=PREDICT, headers=bearer(forge())).status_code == 503


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "a.b.c",
        "eyJhbGciOiJIUzI1NiJ9.e30.",
    ],
)
def test_malformed_token_is_invalid_token(
    client: TestClient, registry: Registry, token: str
) -> None:
    registry.add()
    assert_invalid_token(client.post("/predict/", json=PREDICT, headers=bearer(token)))


def test_empty_bearer_is_invalid_token(client: TestClient) -> None:
    response = client.post("/predict/", json=PREDICT, headers={"Authorization": "Bearer "})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "token_factory",
    [
        pytest.param(lambda: forge({"exp": int(time.time()) - 60}), id="expired"),
        pytest.param(
            lambda: forge(key="another-key-of-sufficient-length-0123456789"), id="bad-sig"
        ),
        pytest.param(lambda: forge(typ="JWT"), id="typ-JWT"),
        pytest.param(lambda: forge(typ=None), id="no-typ"),
        pytest.param(lambda: forge(kid="unknown-kid"), id="unknown-kid"),
        pytest.param(lambda: forge({"iss": "https://evil.example"}), id="wrong-iss"),
        pytest.param(lambda: forge({"aud": "another-api"}), id="wrong-aud"),
        pytest.param(lambda: forge({"client_id": "someone-else"}), id="sub-client-id-mismatch"),
        pytest.param(lambda: forge({"iat": int(time.time()) + 3600}), id="iat-in-future"),
        pytest.param(lambda: forge(alg="HS512"), id="other-hmac-alg"),
    ],
)
def test_attacks_get_invalid_token(
    client: TestClient, registry: Registry, token_factory: Any
) -> None:
    registry.add()
    assert_invalid_token(client.post("/predict/", json=PREDICT, headers=bearer(token_factory())))


def test_alg_none_is_invalid_token(client: TestClient, registry: Registry) -> None:
    registry.add()
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": "http://testserver",
            "sub": "svc",
            "client_id": "svc",
            "aud": "garoupa-api",
            "iat": now,
            "exp": now + 600,
            "jti": "x",
            "scope": "predict",
        },
        None,
        algorithm="none",
        headers={"typ": "at+jwt", "kid": key_id(TEST_SECRET_KEY)},
    )
    assert_invalid_token(client.post("/predict/", json=PREDICT, headers=bearer(token)))


@pytest.mark.parametrize("claim", ["iss", "sub", "client_id", "aud", "exp", "iat", "jti", "scope"])
def test_token_missing_a_claim_is_invalid_token(
    client: TestClient, registry: Registry, claim: str
) -> None:
    registry.add()
    response = client.post("/predict/", json=PREDICT, headers=bearer(forge(drop=claim)))
    assert_invalid_token(response)


def test_token_lacking_scope_gets_403_naming_it(client: TestClient, registry: Registry) -> None:
    registry.add(scopes="train")
    response = client.post("/predict/", json=PREDICT, headers=bearer(token_for(client)))
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="predict"' in challenge
    assert response.json()["error"] == "insufficient_scope"
    assert response.json()["scope"] == "predict"


def _refused_within(client: TestClient, token: str, seconds: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        response = client.post("/predict/", json=PREDICT, headers=bearer(token))
        if response.status_code == 401:
            assert_invalid_token(response)
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"token still accepted after {seconds} s")


def test_deactivated_client_token_fails_within_5_seconds(
    client: TestClient, registry: Registry
) -> None:
    registry.add()
    token = token_for(client)
    assert client.post("/predict/", json=PREDICT, headers=bearer(token)).status_code == 503
    registry.deactivate("svc")
    assert _refused_within(client, token, 5.0) < 5.0


def test_deleted_client_token_fails_within_5_seconds(
    client: TestClient, registry: Registry
) -> None:
    registry.add()
    token = token_for(client)
    registry.delete("svc")
    assert _refused_within(client, token, 5.0) < 5.0


def test_rotated_secret_revokes_old_tokens_but_new_ones_work(
    client: TestClient, registry: Registry
) -> None:
    registry.add()
    old = token_for(client)
    new_secret = registry.rotate("svc")
    _refused_within(client, old, 5.0)
    fresh = token_for(client, secret=new_secret)
    assert client.post("/predict/", json=PREDICT, headers=bearer(fresh)).status_code == 503


def test_reactivated_client_keeps_old_tokens_revoked(
    client: TestClient, registry: Registry
) -> None:
    registry.add()
    old = token_for(client)
    registry.deactivate("svc")
    _refused_within(client, old, 5.0)
    registry.activate("svc")
    time.sleep(2.5)
    assert client.post("/predict/", json=PREDICT, headers=bearer(old)).status_code == 401
    fresh = token_for(client)
    assert client.post("/predict/", json=PREDICT, headers=bearer(fresh)).status_code == 503


def test_newly_registered_client_is_accepted_at_once(
    client: TestClient, registry: Registry
) -> None:
    # The revocation snapshot predates this client; it must not be refused as unknown.
    registry.add(client_id="late")
    token = token_for(client, "late")
    assert client.post("/predict/", json=PREDICT, headers=bearer(token)).status_code == 503
