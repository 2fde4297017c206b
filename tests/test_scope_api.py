"""Out-of-scope names through the API: in_scope, needs_review, min_score, explanations, metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.config import Settings
from app.ml.training import TrainedModel
from tests.support import Api, bearer, make_settings, open_api, token_for
from tests.test_operations import samples
from tests.test_scope import FOREIGN, SUSU


@pytest.fixture
def shipped_api(tmp_path: Path, shipped_model: TrainedModel) -> Iterator[Api]:
    with open_api(make_settings(tmp_path), shipped_model) as api:
        yield api


def _predict(api: Api, **body: object) -> dict[str, object]:
    response = api.post("/predict/", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_api_flags_foreign_products_for_review(shipped_api: Api) -> None:
    for name in FOREIGN:
        body = _predict(shipped_api, product_name=name)
        assert body["in_scope"] is False, body
        assert body["needs_review"] is True
        assert body["prediction_score"] < 0.5
    body = _predict(shipped_api, product_name=SUSU)
    assert (body["predicted_category"], body["in_scope"], body["needs_review"]) == (
        "Susu",
        True,
        False,
    )
    response = shipped_api.post("/predict/batch", json={"product_names": [SUSU, FOREIGN[0]]})
    assert response.status_code == 200, response.text
    items = response.json()["predictions"]
    assert [(i["in_scope"], i["needs_review"]) for i in items] == [(True, False), (False, True)]


def test_min_score_overrides_the_threshold_per_request(shipped_api: Api) -> None:
    strict = _predict(shipped_api, product_name=SUSU, min_score=1.0)
    assert strict["needs_review"] is True and strict["in_scope"] is True
    lenient = _predict(shipped_api, product_name=SUSU, min_score=0.0)
    assert lenient["needs_review"] is False
    # Out of scope needs review whatever the threshold.
    assert _predict(shipped_api, product_name=FOREIGN[0], min_score=0.0)["needs_review"] is True
    batch = shipped_api.post("/predict/batch", json={"product_names": [SUSU], "min_score": 1.0})
    assert batch.json()["predictions"][0]["needs_review"] is True


@pytest.mark.parametrize("bad", [1.5, -0.1, "high", True, None])
def test_min_score_out_of_range_is_a_422_naming_the_field(shipped_api: Api, bad: object) -> None:
    response = shipped_api.post("/predict/", json={"product_name": SUSU, "min_score": bad})
    if bad is None:
        assert response.status_code == 200
        return
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "min_score"]


def test_version_shows_its_review_threshold_and_curve(shipped_api: Api) -> None:
    response = shipped_api.get("/models/v1.0.0")
    assert response.status_code == 200, response.text
    review = response.json()["metrics"]["review"]
    assert 0.0 <= review["threshold"] <= 1.0
    assert response.json()["review_threshold"] == review["threshold"]
    assert review["target_precision"] == 0.95
    curve = review["coverage_precision"]
    assert [point["threshold"] for point in curve[:3]] == [0.0, 0.01, 0.02]
    coverages = [point["coverage"] for point in curve]
    assert coverages == sorted(coverages, reverse=True)
    chosen = next(p for p in curve if p["threshold"] == review["threshold"])
    assert chosen["precision"] >= 0.95


def test_review_threshold_setting_overrides_the_version(
    tmp_path: Path, shipped_model: TrainedModel
) -> None:
    settings: Settings = make_settings(tmp_path, review_threshold=1.0)
    with open_api(settings, shipped_model) as api:
        assert _predict(api, product_name=SUSU)["needs_review"] is True
        assert _predict(api, product_name=SUSU, min_score=0.5)["needs_review"] is False


def test_scope_alpha_outside_its_bounds_is_refused(api: Api) -> None:
    token = bearer(token_for(api.client, scope="predict train"))
    for bad in (0.9, -0.01, "0.05", True):
        response = api.client.post(
            "/training/", json={"params": {"scope_alpha": bad}}, headers=token
        )
        assert response.status_code == 422, response.text
        assert "scope_alpha" in response.text


def test_explain_names_the_words_behind_the_category(shipped_api: Api) -> None:
    body = _predict(shipped_api, product_name=SUSU, explain=True)
    explanation = body["explanation"]
    assert isinstance(explanation, dict)
    assert explanation["category"] == body["predicted_category"] == "Susu"
    supporting = [item["term"] for item in explanation["supporting"]]
    assert "susu" in supporting[:3], explanation
    contributions = [item["contribution"] for item in explanation["supporting"]]
    assert contributions == sorted(contributions, reverse=True) and contributions[-1] > 0
    assert all(item["contribution"] < 0 for item in explanation["opposing"])
    # Every term is a word or word pair of the name, never a character fragment.
    words = set(SUSU.split()) | {"250", "ml", "250 ml", "coklat 250", "ultra coklat", "susu ultra"}
    assert {i["term"] for i in explanation["supporting"] + explanation["opposing"]} <= words
    assert "explanation" not in _predict(shipped_api, product_name=SUSU)
    response = shipped_api.post("/predict/", json={"product_name": SUSU, "explain": "yes"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "explain"]


def test_metrics_show_scores_and_the_out_of_scope_share(shipped_api: Api) -> None:
    def scrape() -> tuple[float, float, float | None]:
        text = shipped_api.client.get("/metrics").text
        scope = samples(text, "garoupa_prediction_scope_total")
        outside = scope.get((("in_scope", "false"), ("model_version", "v1.0.0")), 0.0)
        counts = samples(text, "garoupa_prediction_score_count")
        count = counts.get((("model_version", "v1.0.0"),), 0.0)
        share = samples(text, "garoupa_out_of_scope_share").get((("model_version", "v1.0.0"),))
        return outside, count, share

    outside_before, count_before, _ = scrape()
    for name in [SUSU, SUSU, *FOREIGN[:2]]:
        _predict(shipped_api, product_name=name)
    shipped_api.post("/predict/batch", json={"product_names": [SUSU, FOREIGN[2]]})
    outside, count, share = scrape()
    assert outside - outside_before == 3
    assert count - count_before == 6
    assert share is not None and 0.0 < share <= 1.0
