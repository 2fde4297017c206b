"""The bearer dependency: RFC 6750 answers for missing, invalid, revoked and under-scoped tokens."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.keys import key_id
from app.core.security import CLOCK_LEEWAY_SECONDS
from app.ml.training import TrainedModel
from tests.support import (
    TEST_SECRET_KEY,
    Registry,
    bearer,
    install_model,
    make_settings,
    token_for,
)

PREDICT = {"product_name": "susu ultra coklat 250ml"}
# How long a revoked client's tokens may still be accepted (the revocation snapshot's age).
REVOCATION_BOUND_SECONDS = 5.0


@pytest.fixture
def settings(tmp_path: Path, tiny_model: TrainedModel) -> Settings:
    """A model is served, so an accepted token gets 200 and any refusal is the bearer's."""
    model_settings = make_settings(tmp_path)
    install_model(model_settings, tiny_model)
    return model_settings


def assert_accepted(response: httpx.Response) -> None:
    """The token passed: the prediction was answered (not a 401/403, nor a 503 outage)."""
    assert response.status_code == 200, response.text
    assert response.json()["predicted_category"]


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
    assert_accepted(client.post("/predict/", json=PREDICT, headers=bearer(token_for(client))))


def test_forged_token_with_our_key_is_accepted(client: TestClient, registry: Registry) -> None:
    # Guards the attack tests below: they differ from this token in one respect each.
    registry.add()
    assert_accepted(client.post("/predict/", json=PREDICT, headers=bearer(forge())))


def test_a_remembered_token_is_refused_once_it_expires(
    client: TestClient, registry: Registry
) -> None:
    # Verified tokens are remembered per process until their `exp`: the second
    # request is answered from memory, and after expiry (plus PyJWT's leeway)
    # the token must be refused, not served from that memory.
    registry.add()
    expires = int(time.time()) + 2
    token = forge({"exp": expires})
    assert_accepted(client.post("/predict/", json=PREDICT, headers=bearer(token)))
    assert_accepted(client.post("/predict/", json=PREDICT, headers=bearer(token)))
    while time.time() <= expires + CLOCK_LEEWAY_SECONDS + 1:
        time.sleep(0.25)
    response = client.post("/predict/", json=PREDICT, headers=bearer(token))
    assert_invalid_token(response)
    assert "expired" in response.headers["www-authenticate"]


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


def _seconds_until_refused(client: TestClient, token: str, *, give_up_after: float) -> float:
    """Seconds from now until `token` gets 401 invalid_token; polls up to `give_up_after` s.

    Until then every answer must be a 200: any other status is a failure of its own, not
    a refusal. Polling goes on past the bound under test, so a late refusal is measured
    (and fails the test's comparison) instead of ending the wait.
    """
    start = time.monotonic()
    while True:
        response = client.post("/predict/", json=PREDICT, headers=bearer(token))
        elapsed = time.monotonic() - start
        if response.status_code == 401:
            assert_invalid_token(response)
            return elapsed
        assert_accepted(response)
        if elapsed > give_up_after:
            raise AssertionError(f"token still accepted {elapsed:.1f} s after the revocation")
        time.sleep(0.1)


def _assert_refused_within_bound(client: TestClient, token: str) -> None:
    delay = _seconds_until_refused(client, token, give_up_after=3 * REVOCATION_BOUND_SECONDS)
    assert delay < REVOCATION_BOUND_SECONDS, (
        f"token refused only {delay:.1f} s after the revocation "
        f"(bound {REVOCATION_BOUND_SECONDS} s)"
    )


def test_deactivated_client_token_fails_within_5_seconds(
    client: TestClient, registry: Registry
) -> None:
    registry.add()
    token = token_for(client)
    assert_accepted(client.post("/predict/", json=PREDICT, headers=bearer(token)))
    registry.deactivate("svc")
    _assert_refused_within_bound(client, token)


def test_deleted_client_token_fails_within_5_seconds(
    client: TestClient, registry: Registry
) -> None:
    registry.add()
    token = token_for(client)
    assert_accepted(client.post("/predict/", json=PREDICT, headers=bearer(token)))
    registry.delete("svc")
    _assert_refused_within_bound(client, token)


def test_rotated_secret_revokes_old_tokens_but_new_ones_work(
    client: TestClient, registry: Registry
) -> None:
    registry.add()
    old = token_for(client)
    new_secret = registry.rotate("svc")
    _assert_refused_within_bound(client, old)
    fresh = token_for(client, secret=new_secret)
    assert_accepted(client.post("/predict/", json=PREDICT, headers=bearer(fresh)))


def test_reactivated_client_keeps_old_tokens_revoked(
    client: TestClient, registry: Registry
) -> None:
    registry.add()
    old = token_for(client)
    registry.deactivate("svc")
    _assert_refused_within_bound(client, old)
    registry.activate("svc")
    time.sleep(2.5)
    assert_invalid_token(client.post("/predict/", json=PREDICT, headers=bearer(old)))
    fresh = token_for(client)
    assert_accepted(client.post("/predict/", json=PREDICT, headers=bearer(fresh)))


def test_newly_registered_client_is_accepted_at_once(
    client: TestClient, registry: Registry
) -> None:
    # The revocation snapshot predates this client; it must not be refused as unknown.
    registry.add(client_id="late")
    token = token_for(client, "late")
    assert_accepted(client.post("/predict/", json=PREDICT, headers=bearer(token)))
