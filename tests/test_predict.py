"""POST /predict/ and /predict/batch through real HTTP with the real trained pipeline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.ml.dataset import read_csv
from app.ml.training import TrainedModel, fit_model
from app.services.models import ModelRegistry
from tests.support import (
    TINY_CSV,
    Api,
    Registry,
    bearer,
    install_model,
    make_settings,
    open_api,
    token_for,
)

SUSU = "susu ultra coklat 250ml"
# One name per category of the tiny fixture, each unambiguous.
BATCH = [
    "rinso anti noda 800 gr",
    "indomie goreng 85g",
    "kapal api special mix 10 sachet",
    "pepsodent pasta gigi 190g",
    "chitato sapi panggang 68g",
    "ultra milk coklat 250ml",
]


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    """For conftest's `api`: quick enough a model refresh to see a new version served."""
    return make_settings(tmp_path, model_refresh_seconds=0.2)


@pytest.fixture
def auth(api: Api) -> dict[str, str]:
    return bearer(token_for(api.client, scope="predict"))


def test_prediction_shape_and_probabilities(api: Api, auth: dict[str, str]) -> None:
    response = api.client.post("/predict/", json={"product_name": SUSU, "top_k": 3}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predicted_category"] == "Susu"
    assert body["model_version"] == "v1.0.0"
    ranking = body["top_k"]
    assert len(ranking) == 3
    assert ranking[0] == {"category": "Susu", "score": body["prediction_score"]}
    scores = [item["score"] for item in ranking]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert len({item["category"] for item in ranking}) == 3


def test_top_k_defaults_to_one_and_caps_at_the_number_of_categories(
    api: Api, auth: dict[str, str]
) -> None:
    one = api.client.post("/predict/", json={"product_name": SUSU}, headers=auth).json()
    assert len(one["top_k"]) == 1
    everything = api.client.post(
        "/predict/", json={"product_name": SUSU, "top_k": 20}, headers=auth
    )
    ranking = everything.json()["top_k"]
    # The tiny model knows 6 categories; all their probabilities sum to one.
    assert len(ranking) == 6
    assert sum(item["score"] for item in ranking) == pytest.approx(1.0, abs=1e-9)


def test_path_without_trailing_slash_answers_directly(api: Api, auth: dict[str, str]) -> None:
    response = api.client.post(
        "/predict", json={"product_name": SUSU}, headers=auth, follow_redirects=False
    )
    assert response.status_code == 200
    assert response.json()["predicted_category"] == "Susu"


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        pytest.param({}, ["body", "product_name"], id="missing"),
        pytest.param({"product_name": ""}, ["body", "product_name"], id="empty"),
        pytest.param({"product_name": "   \t "}, ["body", "product_name"], id="blank"),
        pytest.param({"product_name": "x" * 301}, ["body", "product_name"], id="too-long"),
        pytest.param({"product_name": "!!! ---"}, ["body", "product_name"], id="empty-cleaned"),
        pytest.param({"product_name": 12345}, ["body", "product_name"], id="not-a-string"),
        pytest.param({"product_name": None}, ["body", "product_name"], id="null"),
        pytest.param({"product_name": SUSU, "top_k": 0}, ["body", "top_k"], id="top-k-0"),
        pytest.param({"product_name": SUSU, "top_k": 21}, ["body", "top_k"], id="top-k-21"),
        pytest.param({"product_name": SUSU, "top_k": "many"}, ["body", "top_k"], id="top-k-str"),
        pytest.param({"product_name": SUSU, "top_k": 1.5}, ["body", "top_k"], id="top-k-float"),
    ],
)
def test_invalid_single_requests_get_422_naming_the_field(
    api: Api, auth: dict[str, str], payload: dict[str, Any], loc: list[str]
) -> None:
    response = api.client.post("/predict/", json=payload, headers=auth)
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [loc]


def test_300_characters_after_trimming_are_accepted(api: Api, auth: dict[str, str]) -> None:
    name = "  " + ("susu " * 60).strip().ljust(300, "x") + "  "
    response = api.client.post("/predict/", json={"product_name": name}, headers=auth)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        pytest.param({"product_names": []}, ["body", "product_names"], id="empty-list"),
        pytest.param({"product_names": [SUSU] * 1001}, ["body", "product_names"], id="1001"),
        pytest.param({"product_names": SUSU}, ["body", "product_names"], id="not-a-list"),
        pytest.param({"product_names": [SUSU, " "]}, ["body", "product_names", 1], id="blank"),
        pytest.param({"product_names": [SUSU, "@@"]}, ["body", "product_names", 1], id="cleaned"),
        pytest.param({}, ["body", "product_names"], id="missing"),
    ],
)
def test_invalid_batches_get_422_naming_the_item(
    api: Api, auth: dict[str, str], payload: dict[str, Any], loc: list[object]
) -> None:
    response = api.client.post("/predict/batch", json=payload, headers=auth)
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [loc]


def test_body_that_is_not_json_is_a_422(api: Api, auth: dict[str, str]) -> None:
    response = api.client.post(
        "/predict/", content=b"product_name=susu", headers={**auth, "Content-Type": "text/plain"}
    )
    assert response.status_code == 422
    assert "detail" in response.json()


def test_batch_answers_in_input_order_and_matches_single_predictions(
    api: Api, auth: dict[str, str]
) -> None:
    names = BATCH + list(reversed(BATCH))
    response = api.client.post("/predict/batch", json={"product_names": names}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "v1.0.0"
    assert [item["product_name"] for item in body["predictions"]] == names
    for item in body["predictions"]:
        single = api.client.post(
            "/predict/", json={"product_name": item["product_name"]}, headers=auth
        )
        assert single.json()["predicted_category"] == item["predicted_category"]
        assert single.json()["prediction_score"] == pytest.approx(
            item["prediction_score"], abs=1e-12
        )
    categories = [item["predicted_category"] for item in body["predictions"][: len(BATCH)]]
    assert len(set(categories)) == len(BATCH)


def test_a_full_batch_of_1000_is_answered(api: Api, auth: dict[str, str]) -> None:
    names = [f"{BATCH[i % len(BATCH)]} {i}" for i in range(1000)]
    response = api.client.post("/predict/batch", json={"product_names": names}, headers=auth)
    assert response.status_code == 200
    assert [p["product_name"] for p in response.json()["predictions"]] == names


def test_prediction_needs_the_predict_scope(api: Api) -> None:
    train_only = bearer(token_for(api.client, scope="train"))
    response = api.client.post("/predict/", json={"product_name": SUSU}, headers=train_only)
    assert response.status_code == 403
    assert 'scope="predict"' in response.headers["WWW-Authenticate"]


def test_without_a_model_the_answer_is_503_saying_how_to_train(client: TestClient) -> None:
    Registry(client.app).add()  # type: ignore[arg-type]
    auth = bearer(token_for(client))
    for path, payload in [
        ("/predict/", {"product_name": SUSU}),
        ("/predict/batch", {"product_names": [SUSU]}),
    ]:
        response = client.post(path, json=payload, headers=auth)
        assert response.status_code == 503
        assert "python train.py" in response.json()["detail"]


def test_activating_another_version_switches_what_is_served(api: Api, auth: dict[str, str]) -> None:
    other = fit_model(read_csv(TINY_CSV), algorithm="logistic_regression")
    saved = install_model(api.settings, other, activate=True)
    assert saved.version == "v1.0.1"
    assert _served_version_within(api.client, auth, "v1.0.1", seconds=5)

    with api.direct.runtime.session() as session:
        ModelRegistry(session, api.settings.model_dir).activate("v1.0.0")
    assert _served_version_within(api.client, auth, "v1.0.0", seconds=5)


def _served_version_within(
    client: TestClient, auth: dict[str, str], version: str, seconds: float
) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = client.post("/predict/", json={"product_name": SUSU}, headers=auth)
        # Every request during the swap must succeed.
        assert response.status_code == 200
        if response.json()["model_version"] == version:
            return True
        time.sleep(0.05)
    return False


def test_readme_example_holds_with_the_shipped_model(
    tmp_path: Path, shipped_model: TrainedModel
) -> None:
    with open_api(make_settings(tmp_path), shipped_model) as api:
        response = api.post("/predict/", json={"product_name": SUSU, "top_k": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["predicted_category"] == "Susu"
    assert body["prediction_score"] > 0.9
