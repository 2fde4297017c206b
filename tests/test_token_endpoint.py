"""POST /auth/token: the RFC 6749 client-credentials grant, both auth methods, every error."""

from __future__ import annotations

import base64
import statistics
import time
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from tests.support import (
    TEST_SECRET_KEY,
    Registry,
    basic_auth,
    make_settings,
    request_token,
    serve,
)

NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def assert_no_store(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    for name, value in NO_STORE.items():
        assert headers[name] == value


def assert_oauth_error(response: object, status: int, code: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["error"] == code
    assert isinstance(body["error_description"], str) and body["error_description"]
    assert_no_store(response)


@pytest.mark.parametrize("method", ["post", "basic"])
def test_token_with_valid_credentials_is_issued(
    client: TestClient, registry: Registry, method: str
) -> None:
    registry.add()
    response = request_token(client, method=method)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1800
    assert body["scope"] == "predict train"
    assert_no_store(response)


def test_token_has_rfc9068_header_and_claims(client: TestClient, registry: Registry) -> None:
    registry.add(client_id="svc")
    token = request_token(client, scope="predict").json()["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "HS256"
    assert header["kid"]
    claims = jwt.decode(token, TEST_SECRET_KEY, algorithms=["HS256"], audience="garoupa-api")
    assert claims["iss"] == "http://testserver"
    assert claims["sub"] == claims["client_id"] == "svc"
    assert claims["aud"] == "garoupa-api"
    assert claims["scope"] == "predict"
    assert claims["exp"] - claims["iat"] == 1800
    assert abs(claims["iat"] - time.time()) < 5
    assert len(claims["jti"]) >= 16


def test_each_token_has_a_unique_jti(client: TestClient, registry: Registry) -> None:
    registry.add()
    tokens = [request_token(client).json()["access_token"] for _ in range(3)]
    jtis = {jwt.decode(t, options={"verify_signature": False})["jti"] for t in tokens}
    assert len(jtis) == 3


def test_no_refresh_token_is_issued(client: TestClient, registry: Registry) -> None:
    registry.add()
    assert "refresh_token" not in request_token(client).json()


def test_issuer_matches_metadata_document(client: TestClient, registry: Registry) -> None:
    registry.add()
    token = request_token(client).json()["access_token"]
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == metadata["issuer"]


def test_scope_subset_is_granted(client: TestClient, registry: Registry) -> None:
    registry.add(scopes="predict train")
    response = request_token(client, scope="train")
    assert response.status_code == 200
    assert response.json()["scope"] == "train"


def test_scope_the_client_may_not_have_is_invalid_scope(
    client: TestClient, registry: Registry
) -> None:
    registry.add(scopes="predict")
    assert_oauth_error(request_token(client, scope="predict admin"), 400, "invalid_scope")


def test_unknown_scope_is_invalid_scope(client: TestClient, registry: Registry) -> None:
    registry.add()
    assert_oauth_error(request_token(client, scope="everything"), 400, "invalid_scope")


def test_missing_grant_type_is_invalid_request(client: TestClient, registry: Registry) -> None:
    registry.add()
    response = client.post(
        "/auth/token", data={"client_id": "svc", "client_secret": "correct-horse-battery"}
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_other_grant_type_is_unsupported_grant_type(client: TestClient, registry: Registry) -> None:
    registry.add()
    response = client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "client_id": "svc",
            "client_secret": "correct-horse-battery",
        },
    )
    assert_oauth_error(response, 400, "unsupported_grant_type")


def test_repeated_parameter_is_invalid_request(client: TestClient, registry: Registry) -> None:
    registry.add()
    body = (
        "grant_type=client_credentials&client_id=svc&client_secret=correct-horse-battery"
        "&scope=predict&scope=train"
    )
    response = client.post(
        "/auth/token",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_oauth_error(response, 400, "invalid_request")
    assert "scope" in response.json()["error_description"]


def test_json_body_is_invalid_request(client: TestClient, registry: Registry) -> None:
    registry.add()
    response = client.post(
        "/auth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": "svc",
            "client_secret": "correct-horse-battery",
        },
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_both_auth_methods_at_once_is_invalid_request(
    client: TestClient, registry: Registry
) -> None:
    registry.add()
    response = client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "svc",
            "client_secret": "correct-horse-battery",
        },
        headers={"Authorization": basic_auth("svc", "correct-horse-battery")},
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_malformed_basic_header_is_invalid_request(client: TestClient) -> None:
    response = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic !!!not-base64!!!"},
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_no_client_authentication_is_invalid_client(client: TestClient) -> None:
    response = client.post("/auth/token", data={"grant_type": "client_credentials"})
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic realm=")


@pytest.mark.parametrize("method", ["post", "basic"])
def test_wrong_secret_is_invalid_client_with_challenge(
    client: TestClient, registry: Registry, method: str
) -> None:
    registry.add()
    response = request_token(client, secret="wrong-secret-value", method=method)
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic realm=")


def test_unknown_inactive_and_wrong_secret_answer_identically(
    client: TestClient, registry: Registry
) -> None:
    registry.add(client_id="active")
    registry.add(client_id="sleeping")
    registry.deactivate("sleeping")
    answers = [
        request_token(client, "nobody"),
        request_token(client, "active", "wrong-secret-value"),
        request_token(client, "sleeping"),
    ]
    assert {r.status_code for r in answers} == {401}
    assert len({r.text for r in answers}) == 1
    assert len({r.headers["www-authenticate"] for r in answers}) == 1


def test_unknown_client_costs_as_long_as_a_known_one(
    client: TestClient, registry: Registry
) -> None:
    registry.add()

    def median_seconds(client_id: str) -> float:
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            request_token(client, client_id, "wrong-secret-value")
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    known, unknown = median_seconds("svc"), median_seconds("nobody")
    # Without the dummy hash an unknown id answers ~100x faster (no Argon2 run).
    assert 0.5 < unknown / known < 2.0


@pytest.mark.parametrize(
    "client_id,secret",
    [
        ("id:with:colons", "secret:with:colons"),
        ("id%percent", "secret%41percent"),
        ("id+plus", "secret+plus+signs"),
        ("id with space", "secret with spaces"),
        ("kliën-ü-日本", "sécret-ünïcødé-密码"),
    ],
)
def test_basic_credentials_are_form_decoded(
    client: TestClient, registry: Registry, client_id: str, secret: str
) -> None:
    registry.add(client_id=client_id, secret=secret)
    response = request_token(client, client_id, secret, method="basic")
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == client_id


def test_basic_credentials_without_form_encoding_are_decoded_as_form(
    client: TestClient, registry: Registry
) -> None:
    # RFC 6749 §2.3.1: a raw '+' in Basic credentials means a space after decoding.
    registry.add(client_id="plus", secret="a+b+c+d+e+f+g")
    raw = base64.b64encode(b"plus:a+b+c+d+e+f+g").decode()
    response = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {raw}"},
    )
    assert_oauth_error(response, 401, "invalid_client")


def test_post_credentials_with_special_characters(client: TestClient, registry: Registry) -> None:
    registry.add(client_id="ïd:%+ x", secret="sé:cr%et+ value")
    assert request_token(client, "ïd:%+ x", "sé:cr%et+ value").status_code == 200


class TestBruteForceGuard:
    @pytest.fixture
    def client(self, tmp_path: Path) -> object:
        settings = make_settings(
            tmp_path, auth_failure_limit="3/minute", auth_failure_limit_per_address="6/minute"
        )
        with serve(settings) as test_client:
            yield test_client

    def test_repeated_failures_for_a_client_id_get_429_with_retry_after(
        self, client: TestClient, registry: Registry
    ) -> None:
        registry.add()
        for _ in range(3):
            assert request_token(client, secret="wrong-secret-value").status_code == 401
        response = request_token(client, secret="wrong-secret-value")
        assert response.status_code == 429
        assert 1 <= int(response.headers["retry-after"]) <= 60
        assert response.json()["error_description"]
        assert_no_store(response)

    def test_locked_client_id_is_refused_even_with_the_right_secret(
        self, client: TestClient, registry: Registry
    ) -> None:
        registry.add()
        for _ in range(3):
            request_token(client, secret="wrong-secret-value")
        assert request_token(client).status_code == 429

    def test_failures_from_one_address_across_ids_get_429(
        self, client: TestClient, registry: Registry
    ) -> None:
        for index in range(6):
            assert request_token(client, f"guess-{index}", "wrong-secret-value").status_code == 401
        assert request_token(client, "guess-new", "wrong-secret-value").status_code == 429

    def test_successful_requests_are_never_limited(
        self, client: TestClient, registry: Registry
    ) -> None:
        registry.add()
        for _ in range(8):
            assert request_token(client).status_code == 200


def test_an_oversized_token_request_is_refused_in_the_oauth_shape(client: TestClient) -> None:
    # Declared too large: refused by the size limit before any byte is read.
    response = client.post(
        "/auth/token",
        content=b"grant_type=client_credentials&client_id=x&client_secret="
        + b"a" * 2 * 1024 * 1024,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_oauth_error(response, 413, "invalid_request")
