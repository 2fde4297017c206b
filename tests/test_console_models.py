"""The console's models pages: the reliability diagram and two versions side by side.

Real HTTP through the app (TestClient), a real database, real fitted pipelines; the
reliability bins come from app/ml/evaluation.py as training records them.
"""

from __future__ import annotations

import dataclasses
import json
from html.parser import HTMLParser

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.api.routes import console_models
from app.ml.dataset import Dataset, read_csv
from app.ml.evaluation import (
    ECE_BINS,
    ece_from_bins,
    evaluate,
    expected_calibration_error,
    reliability_bins,
)
from app.ml.training import TrainedModel, fit_model
from tests.support import TINY_CSV, Api, Registry, install_model

SECRET = "correct-horse-battery"
# Left out of the second version, so the comparison has a category only one side has.
DROPPED = "Kopi"


@pytest.fixture
def people(api: Api) -> Registry:
    """`reviewer-1` (review) and `boss` (admin)."""
    registry = Registry(api.client.app)  # type: ignore[arg-type]
    registry.add("reviewer-1", scopes="review")
    registry.add("boss", scopes="admin")
    return registry


@pytest.fixture(scope="module")
def fewer_categories_model() -> TrainedModel:
    """The real pipeline fitted on the tiny fixture without one category."""
    tiny = read_csv(TINY_CSV)
    kept = [(t, y) for t, y in zip(tiny.texts, tiny.labels, strict=True) if y != DROPPED]
    return fit_model(Dataset(texts=[t for t, _ in kept], labels=[y for _, y in kept]))


def sign_in(client: TestClient, client_id: str = "reviewer-1") -> httpx.Response:
    response = client.post(
        "/console/sign-in",
        data={"client_id": client_id, "client_secret": SECRET},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return response


class _Tables(HTMLParser):
    """Body rows of the table with a given data-testid: their attributes and cell texts."""

    def __init__(self, testid: str) -> None:
        super().__init__()
        self.testid = testid
        self.depth = 0
        self.section = ""
        self.rows: list[tuple[dict[str, str | None], list[str]]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("data-testid", self.testid) in attrs:
            self.depth = 1
        elif self.depth and tag == "table":
            self.depth += 1
        elif self.depth and tag in ("thead", "tbody", "tfoot"):
            self.section = tag
        elif self.depth and self.section == "tbody" and tag == "tr":
            self.rows.append((dict(attrs), []))
        elif self.depth and self.section == "tbody" and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag == "table":
            self.depth -= 1
        elif self.cell is not None and tag in ("td", "th"):
            self.rows[-1][1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table(page: str, testid: str) -> list[tuple[dict[str, str | None], list[str]]]:
    parser = _Tables(testid)
    parser.feed(page)
    return parser.rows


def cells(page: str, testid: str) -> list[list[str]]:
    return [row for _, row in table(page, testid)]


def by_category(page: str) -> dict[str, list[str]]:
    return {str(attrs["data-category"]): row for attrs, row in table(page, "compare-per-class")}


def compare(api: Api, **params: str) -> httpx.Response:
    return api.client.get("/console/models/compare", params=params)


def assert_readable_regions(page: str) -> None:
    """Every table scrolls inside a labelled, focusable region (390 px phones)."""
    assert page.count("<table") == page.count('class="table-scroll" role="region" tabindex="0"')


# --- the bins evaluate() records -----------------------------------------------------------


def test_evaluate_records_the_bins_its_ece_is_computed_from(tiny_model: TrainedModel) -> None:
    metrics = evaluate(
        tiny_model.evaluated_pipeline, tiny_model.holdout_texts, tiny_model.holdout_labels
    )
    bins = metrics["reliability"]
    assert json.loads(json.dumps(bins)) == bins
    assert len(bins) == ECE_BINS
    assert sum(b["count"] for b in bins) == metrics["n_samples"] == len(tiny_model.holdout_texts)
    assert ece_from_bins(bins) == metrics["ece"] == tiny_model.metrics["ece"]
    # The same number as the calibration error computed on its own from the probabilities.
    proba = tiny_model.evaluated_pipeline.predict_proba(tiny_model.holdout_texts)
    classes = tiny_model.evaluated_pipeline.classes_
    assert expected_calibration_error(tiny_model.holdout_labels, proba, classes) == metrics["ece"]
    for b in bins:
        if b["count"]:
            assert b["lo"] < b["confidence"] <= b["hi"]
            assert 0.0 <= b["accuracy"] <= 1.0
        else:
            assert b["confidence"] is None and b["accuracy"] is None


def test_bins_are_lo_exclusive_hi_inclusive_and_give_the_ece() -> None:
    classes = ["a", "b"]
    # Top-class confidences 0.5, 0.75, 0.75, 1.0 against edges 0, .25, .5, .75, 1.
    proba = np.array([[0.5, 0.5], [0.75, 0.25], [0.25, 0.75], [1.0, 0.0]])
    y_true = ["a", "a", "a", "a"]
    bins = reliability_bins(y_true, proba, classes, n_bins=4)
    assert [b["count"] for b in bins] == [0, 1, 2, 1]
    assert bins[2]["confidence"] == 0.75 and bins[2]["accuracy"] == 0.5
    assert bins[3]["accuracy"] == 1.0
    # |1 - .5| * 1/4 + |.5 - .75| * 2/4 + |1 - 1| * 1/4
    assert ece_from_bins(bins) == pytest.approx(0.25)
    assert expected_calibration_error(y_true, proba, classes, n_bins=4) == ece_from_bins(bins)
    empty = reliability_bins([], np.zeros((0, 2)), classes)
    assert [b["count"] for b in empty] == [0] * ECE_BINS and ece_from_bins(empty) == 0.0


# --- the reliability diagram ---------------------------------------------------------------


def test_the_model_page_shows_the_reliability_diagram_with_its_numbers(
    api: Api, people: Registry, tiny_model: TrainedModel
) -> None:
    sign_in(api.client)
    page = api.client.get("/console/models/v1.0.0")
    assert page.status_code == 200
    recorded = tiny_model.metrics
    filled = [b for b in recorded["reliability"] if b["count"]]
    rows = cells(page.text, "reliability")
    assert [int(row[1]) for row in rows] == [b["count"] for b in filled]
    assert sum(int(row[1]) for row in rows) == recorded["n_samples"]
    assert [row[3] for row in rows] == [f"{b['accuracy']:.3f}" for b in filled]
    stated = page.text.split('data-testid="reliability-ece">', 1)[1].split("</p>", 1)[0]
    assert f"<strong>{recorded['ece']:.4f}</strong>" in stated
    chart = page.text.split('class="reliability-svg"', 1)[1].split("</svg>", 1)[0]
    assert chart.count("<circle") == len(filled) and 'class="diagonal"' in chart
    assert "reliability-missing" not in page.text
    assert_readable_regions(page.text)


def test_a_version_trained_before_bins_were_recorded_says_so(
    api: Api, people: Registry, tiny_model: TrainedModel
) -> None:
    metrics = {k: v for k, v in tiny_model.metrics.items() if k != "reliability"}
    old = install_model(
        api.settings, dataclasses.replace(tiny_model, metrics=metrics), activate=False
    )
    sign_in(api.client)
    page = api.client.get(f"/console/models/{old.version}")
    assert page.status_code == 200
    assert "trained before reliability bins were recorded" in page.text
    assert f"its ECE was {metrics['ece']:.4f}" in page.text
    assert 'data-testid="reliability"' not in page.text and "reliability-svg" not in page.text


# --- two versions side by side -------------------------------------------------------------


def test_the_comparison_shows_both_versions_and_per_category_differences(
    api: Api,
    people: Registry,
    tiny_model: TrainedModel,
    fewer_categories_model: TrainedModel,
) -> None:
    b = install_model(api.settings, fewer_categories_model, activate=False).version
    sign_in(api.client)
    listing = api.client.get("/console/models").text
    # The list's form starts on the active version against the newest other one.
    assert '<label for="compare-a">Version A</label>' in listing
    assert '<option value="v1.0.0" selected>v1.0.0 (active)</option>' in listing
    assert f'<option value="{b}" selected>{b}</option>' in listing

    page = compare(api, a="v1.0.0", b=b)
    assert page.status_code == 200
    left, right = tiny_model.metrics, fewer_categories_model.metrics
    headline = {row[0]: row[1:] for row in cells(page.text, "headline")}
    assert headline["Macro-F1"][:2] == [f"{left['macro_f1']:.3f}", f"{right['macro_f1']:.3f}"]
    assert headline["State"][:2] == ["active", "kept"]
    assert headline["ECE (lower is better)"][:2] == [f"{left['ece']:.4f}", f"{right['ece']:.4f}"]

    rows = by_category(page.text)
    assert set(rows) == set(left["per_class"])
    for category, row in rows.items():
        a = left["per_class"][category]
        if category == DROPPED:
            assert row[0] == f"{DROPPED} only in A"
            assert row[1] == f"{a['precision']:.3f}" and row[2] == row[3] == "–"
            continue
        bb = right["per_class"][category]
        assert row[0] == category
        for i, key in enumerate(("precision", "recall", "f1")):
            assert row[1 + 3 * i : 4 + 3 * i][:2] == [f"{a[key]:.3f}", f"{bb[key]:.3f}"]
            change = bb[key] - a[key]
            expected = "0.000" if round(change, 3) == 0 else f"{change:+.3f}"
            assert row[3 + 3 * i] == expected, (category, key)
        assert row[10:] == [str(a["support"]), str(bb["support"])]
    # By default the biggest F1 drops first; the category B lacks comes last.
    order = list(rows)
    changes = [right["per_class"][c]["f1"] - left["per_class"][c]["f1"] for c in order[:-1]]
    assert changes == sorted(changes) and order[-1] == DROPPED
    assert_readable_regions(page.text)


def test_the_comparison_sorts_by_allowed_keys_only(
    api: Api, people: Registry, fewer_categories_model: TrainedModel
) -> None:
    b = install_model(api.settings, fewer_categories_model, activate=False).version
    sign_in(api.client)
    by_name = compare(api, a="v1.0.0", b=b, sort="category", order="desc")
    assert by_name.status_code == 200
    names = list(by_category(by_name.text))
    assert names == sorted(names, reverse=True)
    assert 'aria-sort="descending"' in by_name.text

    by_recall = by_category(compare(api, a="v1.0.0", b=b, sort="recall", order="asc").text)
    recalls = [float(row[5]) for row in by_recall.values() if row[5] != "–"]
    assert recalls == sorted(recalls) and list(by_recall)[-1] == DROPPED

    default = compare(api, a="v1.0.0", b=b).text
    for hostile in ({"sort": "__class__", "order": "sideways"}, {"sort": "a.f1"}):
        refused = compare(api, a="v1.0.0", b=b, **hostile)
        assert refused.status_code == 200
        assert list(by_category(refused.text)) == list(by_category(default))
        assert "__class__" not in refused.text
    too_long = compare(api, a="v1.0.0", b=b, sort="x" * 40)
    assert too_long.status_code == 422


def test_the_comparison_pages_through_many_categories(
    api: Api,
    people: Registry,
    tiny_model: TrainedModel,
    fewer_categories_model: TrainedModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b = install_model(api.settings, fewer_categories_model, activate=False).version
    monkeypatch.setattr(console_models, "COMPARE_PAGE_SIZE", 4)
    sign_in(api.client)
    first = compare(api, a="v1.0.0", b=b, sort="category")
    second = compare(api, a="v1.0.0", b=b, sort="category", page="2")
    assert "Categories 1–4 of 6." in first.text and "Categories 5–6 of 6." in second.text
    assert 'rel="next"' in first.text and 'rel="prev"' in second.text
    shown = list(by_category(first.text)) + list(by_category(second.text))
    assert shown == sorted(tiny_model.metrics["per_class"])
    # Past the end or not a number: the nearest page, not an error.
    assert list(by_category(compare(api, a="v1.0.0", b=b, sort="category", page="99").text)) == (
        list(by_category(second.text))
    )
    assert compare(api, a="v1.0.0", b=b, page="²").status_code == 200


def test_the_comparison_names_unknown_versions_and_allows_the_same_one_twice(
    api: Api, people: Registry
) -> None:
    sign_in(api.client)
    missing = compare(api, a="v1.0.0", b="v9.9.9")
    assert missing.status_code == 404 and "No model version is called &#39;v9.9.9&#39;" in (
        missing.text
    )
    assert compare(api, a="<script>", b="v1.0.0").status_code == 404
    assert compare(api, a="v1.0.0").status_code == 400
    same = compare(api, a="v1.0.0", b="v1.0.0")
    assert same.status_code == 200 and 'data-testid="same-version"' in same.text
    assert all(row[3] == "0.000" for row in by_category(same.text).values())


def test_a_reviewer_may_compare_but_not_signed_out(
    api: Api, people: Registry, fewer_categories_model: TrainedModel
) -> None:
    b = install_model(api.settings, fewer_categories_model, activate=False).version
    anonymous = api.client.get(
        "/console/models/compare", params={"a": "v1.0.0", "b": b}, follow_redirects=False
    )
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/console/sign-in"
    sign_in(api.client, "reviewer-1")
    page = compare(api, a="v1.0.0", b=b)
    assert page.status_code == 200 and "reviewer-1" in page.text
    assert "<script" not in page.text and "style=" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    # Read-only: no form that changes anything beyond signing out.
    assert page.text.count('method="post"') == 1
