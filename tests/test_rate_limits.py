"""Per-client rate limits by scope: in memory, shared through a real Redis, and Redis down."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.ml.training import TrainedModel
from tests.support import (
    REDIS_URL,
    Registry,
    bearer,
    install_model,
    make_settings,
    redis_available,
    serve,
    token_for,
)

SUSU = {"product_name": "susu ultra coklat 250ml"}


needs_redis = pytest.mark.skipif(
    not redis_available(), reason="no Redis server answers on 127.0.0.1:6379"
)


@contextmanager
def running_app(
    tmp_path: Path, tiny_model: TrainedModel, **overrides: object
) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, **overrides)
    install_model(settings, tiny_model)
    with serve(settings) as client:
        yield client


def test_a_client_over_its_limit_gets_429_with_retry_after(
    tmp_path: Path, tiny_model: TrainedModel
) -> None:
    with running_app(tmp_path, tiny_model, rate_limit_predict="3/minute") as api:
        registry = Registry(api.app)  # type: ignore[arg-type]
        registry.add("busy")
        registry.add("calm")
        busy, calm = bearer(token_for(api, "busy")), bearer(token_for(api, "calm"))
        statuses = [api.post("/predict/", json=SUSU, headers=busy).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = api.post("/predict/", json=SUSU, headers=busy)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        body = refused.json()
        assert body["scope"] == "predict" and "Rate limit exceeded" in body["detail"]
        # Other clients, and the same client's other scopes, are unaffected.
        assert api.post("/predict/", json=SUSU, headers=calm).status_code == 200
        assert api.get("/models/", headers=busy).status_code == 200


def test_unlimited_turns_a_limit_off(tmp_path: Path, tiny_model: TrainedModel) -> None:
    with running_app(tmp_path, tiny_model, rate_limit_predict="unlimited") as api:
        Registry(api.app).add()  # type: ignore[arg-type]
        auth = bearer(token_for(api))
        assert {api.post("/predict/", json=SUSU, headers=auth).status_code for _ in range(30)} == {
            200
        }


def test_invalid_limits_stop_start_up_with_a_clear_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a rate"):
        make_settings(tmp_path, rate_limit_train="often")


@needs_redis
def test_limits_are_shared_through_redis_across_instances(
    tmp_path: Path, tiny_model: TrainedModel
) -> None:
    client_id = f"shared-{uuid.uuid4().hex[:8]}"
    settings_a = make_settings(tmp_path / "a", redis_url=REDIS_URL, rate_limit_predict="4/minute")
    install_model(settings_a, tiny_model)
    # Two apps with separate memory but one database and one Redis: two replicas.
    settings_b = make_settings(tmp_path / "a", redis_url=REDIS_URL, rate_limit_predict="4/minute")
    with serve(settings_a) as a, serve(settings_b) as b:
        Registry(a.app).add(client_id)  # type: ignore[arg-type]
        auth = bearer(token_for(a, client_id))
        statuses = [
            (a if i % 2 else b).post("/predict/", json=SUSU, headers=auth).status_code
            for i in range(6)
        ]
    assert statuses == [200, 200, 200, 200, 429, 429]


@needs_redis
def test_token_brute_force_guard_is_shared_through_redis(
    tmp_path: Path, tiny_model: TrainedModel
) -> None:
    client_id = f"guarded-{uuid.uuid4().hex[:8]}"
    overrides = {"redis_url": REDIS_URL, "auth_failure_limit": "3/minute"}
    settings = make_settings(tmp_path, **overrides)
    install_model(settings, tiny_model)
    with (
        serve(settings) as a,
        serve(make_settings(tmp_path, **overrides)) as b,
    ):
        Registry(a.app).add(client_id)  # type: ignore[arg-type]
        wrong = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": "x" * 12,
        }
        codes = [(a if i % 2 else b).post("/auth/token", data=wrong).status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]


def test_an_unreachable_redis_gives_a_quick_503_not_a_hang(
    tmp_path: Path, tiny_model: TrainedModel
) -> None:
    with running_app(tmp_path, tiny_model) as healthy:
        # A token from a replica whose Redis works: same key, issuer and database.
        Registry(healthy.app).add()  # type: ignore[arg-type]
        auth = bearer(token_for(healthy))
    with running_app(tmp_path, tiny_model, redis_url="redis://127.0.0.1:9/0") as api:
        started = time.monotonic()
        response = api.post("/predict/", json=SUSU, headers=auth)
        token_response = api.post(
            "/auth/token",
            data={"grant_type": "client_credentials", "client_id": "svc", "client_secret": "x"},
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert "rate-limit store is unavailable" in response.json()["detail"]
    # The token endpoint keeps the RFC 6749 error shape even for an outage.
    assert token_response.status_code == 503
    assert token_response.json()["error"] == "temporarily_unavailable"
    assert "unavailable" in token_response.json()["error_description"]
    assert token_response.headers["Retry-After"] and token_response.headers["Cache-Control"]
    assert elapsed < 5
