"""Work per prediction request is bounded: names are capped after NFKC, batches in total,
and categories that reach /metrics as label values are capped too."""

from __future__ import annotations

import csv
import io
import json
import time
import unicodedata
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.core.config import Settings
from app.core.metrics import MAX_LABEL_CHARS
from app.ml.dataset import parse_csv
from app.ml.training import TrainedModel, fit_model
from tests.support import TINY_CSV, Api, make_settings, open_api

# U+FDFA: one character that NFKC turns into eighteen.
EXPANDING = "\ufdfa"


def post_json(client: TestClient, path: str, body: object, auth: dict[str, str]) -> httpx.Response:
    # Sent as UTF-8, not \\u escapes, as an attacker would: 3 bytes per character.
    content = json.dumps(body, ensure_ascii=False).encode()
    return client.post(path, content=content, headers={**auth, "Content-Type": "application/json"})


def test_a_batch_of_names_that_expand_under_nfkc_is_a_422_naming_each_name(
    api: Api,
) -> None:
    client, auth = api.client, api.auth
    names = [EXPANDING * 300] * 1000
    started = time.perf_counter()
    response = post_json(client, "/predict/batch", {"product_names": names}, auth)
    elapsed = time.perf_counter() - started
    assert response.status_code == 422, response.text[:300]
    errors = response.json()["detail"]
    assert {tuple(e["loc"]) for e in errors} == {("body", "product_names", i) for i in range(1000)}
    assert all("NFKC" in e["msg"] for e in errors)
    # Refused on a prefix of each name: far below the 3 s that scoring them took.
    assert elapsed < 2.5, elapsed


def test_one_name_that_expands_past_300_characters_is_a_422_naming_the_field(
    api: Api,
) -> None:
    client, auth = api.client, api.auth
    response = post_json(client, "/predict/", {"product_name": EXPANDING * 300}, auth)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "product_name"]
    assert error["type"] == "string_too_long"
    assert error["ctx"] == {"max_length": 300}


def test_the_cap_counts_characters_after_normalisation(
    api: Api,
) -> None:
    client, auth = api.client, api.auth
    fits = EXPANDING * 16 + " susu"  # 16 * 18 + 5 = 293 characters after NFKC
    too_long = EXPANDING * 17  # 306
    assert len(unicodedata.normalize("NFKC", fits)) == 293
    assert post_json(client, "/predict/", {"product_name": fits}, auth).status_code == 200
    response = post_json(client, "/predict/batch", {"product_names": ["susu", too_long]}, auth)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "product_names", 1]]


def test_a_batch_above_max_batch_chars_is_a_422_naming_the_list(
    tmp_path: Path, tiny_model: TrainedModel
) -> None:
    settings = make_settings(tmp_path, max_batch_chars=1000)
    with open_api(settings, tiny_model) as api:
        client, auth = api.client, api.auth
        name = ("susu ultra coklat " * 20)[:250]
        accepted = client.post("/predict/batch", json={"product_names": [name] * 4}, headers=auth)
        assert accepted.status_code == 200, accepted.text
        refused = client.post("/predict/batch", json={"product_names": [name] * 5}, headers=auth)
        assert refused.status_code == 422
        (error,) = refused.json()["detail"]
        assert error["loc"] == ["body", "product_names"]
        assert "1250 characters" in error["msg"] and "MAX_BATCH_CHARS" in error["msg"]
        # Counted after NFKC as well: 3 raw characters, 54 normalised.
        expanding = client.post(
            "/predict/batch",
            json={"product_names": [name] * 3 + [EXPANDING * 3 + " susu"] * 5},
            headers=auth,
        )
        assert expanding.status_code == 422


def test_max_batch_chars_defaults_to_the_contracts_own_maximum(settings: Settings) -> None:
    assert settings.max_batch_chars == 1000 * 300


# --- categories as Prometheus label values ---------------------------------------------------

HOSTILE_CATEGORY = "Susu\x1b[2J\u202e\r\nfake_metric 1\t" + "x" * 500


@pytest.fixture(scope="module")
def hostile_model() -> TrainedModel:
    """The tiny data with its `Susu` category renamed to a long label full of control characters."""
    rows = list(csv.reader(io.StringIO(TINY_CSV.read_text(encoding="utf-8"))))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(rows[0])
    label_col = rows[0].index("category")
    for row in rows[1:]:
        if row[label_col] == "Susu":
            row[label_col] = HOSTILE_CATEGORY
        writer.writerow(row)
    return fit_model(parse_csv(buffer.getvalue().encode(), "hostile.csv"))


def test_a_long_category_with_control_characters_is_capped_in_metrics(
    tmp_path: Path, hostile_model: TrainedModel
) -> None:
    with open_api(make_settings(tmp_path), hostile_model) as api:
        client, auth = api.client, api.auth
        predicted = client.post(
            "/predict/", json={"product_name": "susu ultra coklat 250ml"}, headers=auth
        )
        assert predicted.json()["predicted_category"] == HOSTILE_CATEGORY
        metrics = client.get("/metrics").text
    labels = [
        sample.labels["category"]
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "garoupa_predictions_total"
    ]
    assert labels and all(len(label) <= MAX_LABEL_CHARS for label in labels)
    assert all(ch.isprintable() for label in labels for ch in label)
    assert "Susu[2Jfake_metric 1" + "x" * 44 in labels
    assert not any(line.startswith("fake_metric") for line in metrics.splitlines())
