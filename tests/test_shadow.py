"""Shadow evaluation through the API: a candidate scores live traffic beside the active
version without changing an answer, every worker's counts add up in one report,
stopping and activating end a run, and the promotion rules promote only when met."""

from __future__ import annotations

import csv
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.models import AuditEvent
from app.ml.training import TrainedModel
from app.services.prediction import ServingModel
from app.services.shadow import QUEUE_ITEMS
from tests.support import SHIPPED_CSV, Api, install_model, make_settings, open_api
from tests.support.api import serve
from tests.support.auth import Registry, bearer, token_for
from tests.test_console_models import assert_readable_regions, cells, sign_in

CANDIDATE = "v1.0.1"
SHADOW = f"/models/{CANDIDATE}/shadow"
# Names of the shipped data (most unlike the tiny fixture's six categories), and
# some no model has seen.
AWKWARD = ["qwxz vvkj plorft", '=HYPERLINK("http://x")', "ＳＵＳＵ ＵＬＴＲＡ 250ml", "kopi"]


def _names(n: int) -> list[str]:
    with SHIPPED_CSV.open(encoding="utf-8", newline="") as handle:
        rows = [row["product_name"] for row in csv.DictReader(handle)]
    return rows[::7][:n] + AWKWARD


@pytest.fixture
def flipping(api: Api, shipped_model: TrainedModel) -> Api:
    """The tiny model serves (v1.0.0); the shipped one is the candidate (v1.0.1)."""
    install_model(api.settings, shipped_model, activate=False)
    return api


@pytest.fixture
def shadowed(api: Api, tiny_model: TrainedModel) -> Api:
    """The tiny model serves (v1.0.0) and is the candidate too (v1.0.1): quick to save."""
    install_model(api.settings, tiny_model, activate=False)
    return api


def _batch(api: Api | TestClient, names: list[str], headers: dict[str, str] | None = None) -> Any:
    post = api.post if isinstance(api, Api) else api.post
    kwargs: dict[str, Any] = {"json": {"product_names": names}}
    if headers is not None:
        kwargs["headers"] = headers
    response = post("/predict/batch", **kwargs)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def _start(api: Api, rate: float | None = 1.0) -> dict[str, Any]:
    # No rate: no body at all, the default share.
    response = api.post(SHADOW, json={"sample_rate": rate}) if rate else api.post(SHADOW)
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == SHADOW
    # What every worker's registry check does within MODEL_REFRESH_SECONDS.
    api.direct.runtime.shadow.follow()
    return dict(response.json())


def _report(api: Api) -> dict[str, Any]:
    assert api.direct.runtime.shadow.flush(), "the shadow queue was not written in time"
    response = api.get(SHADOW)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _candidate(api: Api) -> ServingModel:
    return api.direct.runtime.predictions.load(CANDIDATE)


def _expected(api: Api, names: list[str], served: list[dict[str, Any]]) -> dict[str, Any]:
    """The flips, agreement and rates the report must show for these answers."""
    theirs = _candidate(api).rank(names, 1)
    flips = Counter(
        (mine["predicted_category"], other.category)
        for mine, other in zip(served, theirs, strict=True)
    )
    agreed = sum(n for (a, c), n in flips.items() if a == c)
    return {
        "items": len(names),
        "agreement": agreed / len(names),
        "flips": {k: n for k, n in flips.items() if k[0] != k[1]},
        "active_review": sum(p["needs_review"] for p in served) / len(names),
        "active_out_of_scope": sum(not p["in_scope"] for p in served) / len(names),
        "candidate_scores": sorted(round(r.score, 9) for r in theirs),
    }


def _assert_largest_flips(report: dict[str, Any], expected: dict[tuple[str, str], int]) -> None:
    """The report lists the 50 largest flips, largest first, each counted exactly."""
    shown = {(f["active_category"], f["candidate_category"]): f["count"] for f in report["flips"]}
    assert len(shown) == min(50, len(expected))
    assert report["flips_total"] == len(expected)
    assert all(expected[flip] == count for flip, count in shown.items())
    left_out = [count for flip, count in expected.items() if flip not in shown]
    assert max(left_out, default=0) <= min(shown.values(), default=0)
    counts = [f["count"] for f in report["flips"]]
    assert counts == sorted(counts, reverse=True)


def test_the_candidate_scores_every_sampled_item_and_no_answer_changes(flipping: Api) -> None:
    api = flipping
    names = _names(120)
    before = _batch(api, names)
    started = _start(api)
    assert started["status"] == "running"
    assert started["items_compared"] == 0
    assert (started["model_version"], started["active_version"]) == (CANDIDATE, "v1.0.0")

    served = _batch(api, names)
    one = api.post("/predict/", json={"product_name": names[0], "top_k": 3})
    assert one.status_code == 200
    assert served == before, "shadow evaluation changed a served answer"
    assert one.json()["predicted_category"] == before[0]["predicted_category"]

    report = _report(api)
    expected = _expected(api, [*names, names[0]], [*served, served[0]])
    assert report["items_compared"] == expected["items"] == len(names) + 1
    assert report["agreement_rate"] == pytest.approx(expected["agreement"])
    _assert_largest_flips(report, expected["flips"])
    for flip in report["flips"]:
        assert 1 <= len(flip["examples"]) <= 3
        assert set(flip["examples"]) <= set(names)
    active, candidate = report["active"], report["candidate"]
    assert active["needs_review_rate"] == pytest.approx(expected["active_review"])
    assert active["out_of_scope_rate"] == pytest.approx(expected["active_out_of_scope"])
    assert sum(active["score_histogram"]) == sum(candidate["score_histogram"]) == len(names) + 1
    assert candidate["latency"]["items"] == len(names) + 1
    assert candidate["latency"]["mean_us"] > 0


def test_two_workers_counts_add_up_in_one_report(flipping: Api) -> None:
    api = flipping
    names = _names(60)
    _start(api)
    # A second worker: its own process state, the same database and model directory.
    with serve(api.settings) as other:
        worker = other.app.state.runtime  # type: ignore[attr-defined]
        worker.shadow.follow()
        assert worker.shadow.run_id == api.direct.runtime.shadow.run_id
        first = _batch(api, names)
        second = _batch(other, names[:25], bearer(token_for(other)))
        third = _batch(other, names[25:], bearer(token_for(other)))
        assert worker.shadow.flush()
    assert first == second + third, "two workers served different answers"
    report = _report(api)
    assert report["items_compared"] == 2 * len(names)
    expected = _expected(api, names, first)
    assert report["agreement_rate"] == pytest.approx(expected["agreement"])
    doubled = {flip: 2 * n for flip, n in expected["flips"].items()}
    _assert_largest_flips(report, doubled)


def test_a_share_of_the_traffic_is_sampled(shadowed: Api) -> None:
    api = shadowed
    assert _start(api, rate=None)["sample_rate"] == 0.1
    names = _names(200)
    for _ in range(4):
        _batch(api, names)
    items = _report(api)["items_compared"]
    # 816 names at 10 %: outside (0, 816) with a probability below 1e-37.
    assert 0 < items < 4 * len(names)


def test_stopping_ends_the_run_and_keeps_its_report(shadowed: Api) -> None:
    api = shadowed
    names = _names(30)
    _start(api)
    _batch(api, names)
    compared = _report(api)["items_compared"]
    stopped = api.client.delete(SHADOW, headers=api.auth)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "ended"
    assert stopped.json()["end_reason"] == "stopped by svc"
    api.direct.runtime.shadow.follow()
    assert api.direct.runtime.shadow.run_id is None
    _batch(api, names)
    assert _report(api)["items_compared"] == compared
    assert api.client.delete(SHADOW, headers=api.auth).status_code == 404
    with api.direct.runtime.session() as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.target == CANDIDATE))
        assert set(actions) == {"model.shadow_start", "model.shadow_stop"}


def test_activating_the_candidate_ends_the_run(shadowed: Api) -> None:
    api = shadowed
    _start(api)
    _batch(api, _names(20))
    activated = api.post(f"/models/{CANDIDATE}/activate")
    assert activated.status_code == 200, activated.text
    report = _report(api)
    assert (report["status"], report["end_reason"]) == ("ended", "activated")
    assert report["items_compared"] == 20 + len(AWKWARD)


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/models/v1.0.0/shadow", {}, 409, None),  # the active version
        ("/models/v9.9.9/shadow", {}, 404, None),
        ("/models/..%2F..%2Fetc/shadow", {}, 404, None),
        (SHADOW, {"sample_rate": 0}, 422, "sample_rate"),
        (SHADOW, {"sample_rate": 1.5}, 422, "sample_rate"),
        (SHADOW, {"sample_rate": "all"}, 422, "sample_rate"),
        (SHADOW, {"sample_rate": 0.5, "as_active": True}, 422, "as_active"),
    ],
)
def test_bad_starts_are_refused_naming_the_reason(
    shadowed: Api, path: str, body: dict[str, Any], status: int, field: str | None
) -> None:
    response = shadowed.post(path, json=body)
    assert response.status_code == status, response.text
    if field is not None:
        assert response.json()["detail"][0]["loc"] == ["body", field]
    assert shadowed.get(SHADOW).status_code == 404


def test_one_run_at_a_time_and_only_for_train_clients(shadowed: Api) -> None:
    api = shadowed
    _start(api)
    again = api.post(SHADOW, json={})
    assert again.status_code == 409
    assert "being shadowed" in again.json()["detail"]
    Registry(api.client.app).add("reader", scopes="predict")  # type: ignore[arg-type]
    reader = bearer(token_for(api.client, "reader"))
    assert api.client.get(SHADOW, headers=reader).status_code == 403
    assert api.client.delete(SHADOW, headers=reader).status_code == 403


@pytest.fixture
def promoting(tmp_path: Path, tiny_model: TrainedModel) -> Iterator[Api]:
    """AUTO_PROMOTE on with low bars; the candidate is the same model trained again."""
    settings = make_settings(
        tmp_path,
        auto_promote=True,
        auto_promote_min_items=100,
        auto_promote_min_agreement=0.99,
    )
    with open_api(settings, tiny_model) as api:
        install_model(settings, tiny_model, activate=False)
        yield api


def test_the_promotion_rules_activate_a_candidate_once_they_are_met(promoting: Api) -> None:
    api = promoting
    _start(api)
    names = _names(40)
    _batch(api, names)
    assert api.direct.runtime.shadow.flush()
    api.direct.runtime.shadow.follow()
    assert api.served_version() == "v1.0.0", "promoted before AUTO_PROMOTE_MIN_ITEMS"
    for _ in range(3):
        _batch(api, names)
    assert api.direct.runtime.shadow.flush()
    api.direct.runtime.shadow.follow()
    assert api.serves_within(CANDIDATE)
    report = _report(api)
    assert report["status"] == "ended"
    assert report["end_reason"].startswith("promoted automatically: agreement 1.0000")
    with api.direct.runtime.session() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "model.activate")
        ).one()
        assert (event.actor, event.target, event.outcome) == ("auto-promote", CANDIDATE, "success")


def test_a_candidate_that_cannot_be_loaded_leaves_serving_alone(shadowed: Api) -> None:
    api = shadowed
    response = api.post(SHADOW, json={"sample_rate": 1.0})
    assert response.status_code == 201
    # The candidate's files go after the start checked them (a disk fault, an operator).
    for path in api.settings.model_dir.glob(f"*{CANDIDATE}*"):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    api.direct.runtime.shadow.follow()
    assert api.direct.runtime.shadow.run_id is None
    before = _batch(api, _names(10))
    assert _batch(api, _names(10)) == before
    assert api.get(SHADOW).json()["items_compared"] == 0


def test_a_flood_of_sampled_items_is_bounded_and_every_item_accounted_for(shadowed: Api) -> None:
    api = shadowed
    _start(api)
    evaluator = api.direct.runtime.shadow
    names = _names(40)
    served = api.direct.runtime.predictions.predict(names)
    flood = QUEUE_ITEMS + 5_000
    repeats = flood // len(names) + 1
    skipped_before = _skipped(api)
    # What a burst of large batches offers, faster than any candidate scores it.
    evaluator.offer(
        replace(served, ranked=served.ranked * repeats),
        names * repeats,
        [False] * (len(names) * repeats),
        None,
    )
    assert len(evaluator._queue) <= QUEUE_ITEMS
    report = _report(api)
    skipped = _skipped(api) - skipped_before
    assert skipped > 0
    assert report["items_compared"] + skipped == len(names) * repeats


def _skipped(api: Api) -> float:
    text = api.client.get("/metrics").text
    found = re.search(r"^garoupa_shadow_skipped_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_the_console_model_page_shows_the_live_comparison(flipping: Api) -> None:
    api = flipping
    Registry(api.client.app).add("reviewer-1", scopes="review")  # type: ignore[arg-type]
    sign_in(api.client)
    before = api.client.get(f"/console/models/{CANDIDATE}")
    assert before.status_code == 200
    assert 'data-testid="live-none"' in before.text
    _start(api)
    _batch(api, _names(80))
    report = _report(api)
    page = api.client.get(f"/console/models/{CANDIDATE}").text
    summary = page.split('data-testid="live-summary">', 1)[1].split("</p>", 1)[0]
    assert f"<strong>{report['items_compared']:,}</strong> compared" in summary
    assert f"<strong>{100 * report['agreement_rate']:.1f} %</strong>" in summary
    sides = cells(page, "live-sides")
    assert [row[2] for row in sides] == [
        f"{100 * report[side]['needs_review_rate']:.1f} %" for side in ("active", "candidate")
    ]
    flips = cells(page, "live-flips")
    assert [(r[0], r[1], int(r[2])) for r in flips] == [
        (f["active_category"], f["candidate_category"], f["count"]) for f in report["flips"][:10]
    ]
    assert_readable_regions(page)
