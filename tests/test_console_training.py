"""The console's training pages: upload, counts, a real job to its end, refusals.

Real HTTP through the app (TestClient), a real database, real CSV uploads and a
real training process. The browser side (drag and drop, live progress) is the
browser tests' to check.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.api.deps import get_launcher
from app.core.config import Settings
from app.services.audit import AuditFilter, AuditTrail
from tests.polling import poll_json
from tests.support import Api, Registry, csv_bytes, make_settings, shipped_rows

SECRET = "correct-horse-battery"
UPLOAD_LOCATION = re.compile(r"/console/training/uploads/(\d{8}-\d{6}-[0-9a-f]{16}\.csv)")
JOB_LOCATION = re.compile(r"/console/training/jobs/([0-9a-f-]{36})")


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    """For conftest's `api`: quick model refresh, and an upload limit a test can pass."""
    return make_settings(tmp_path, model_refresh_seconds=0.2, max_upload_bytes=8 * 1024)


@pytest.fixture
def people(api: Api) -> Registry:
    """`trainer` (review train), `reviewer-1` (review), `boss` (admin)."""
    registry = Registry(api.client.app)  # type: ignore[arg-type]
    registry.add("trainer", scopes="review train")
    registry.add("reviewer-1", scopes="review")
    registry.add("boss", scopes="admin")
    return registry


def sign_in(api: Api, client_id: str) -> str:
    """Start `client_id`'s session; its CSRF token."""
    api.client.cookies.clear()
    response = api.client.post(
        "/console/sign-in",
        data={"client_id": client_id, "client_secret": SECRET},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', api.client.get("/console/models").text)
    assert found, "the page has no sign-out form"
    return found.group(1)


def upload(
    api: Api, token: str | None, name: str, content: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    data = {} if token is None else {"csrf_token": token}
    return api.client.post(
        "/console/training/upload",
        data=data,
        files={"file": (name, content, "text/csv")},
        headers=headers,
        follow_redirects=False,
    )


def start(
    api: Api,
    token: str | None,
    upload_name: str = "",
    headers: dict[str, str] | None = None,
    **fields: str,
) -> httpx.Response:
    data = {"upload": upload_name, "include_base_data": "on", **fields}
    if token is not None:
        data["csrf_token"] = token
    return api.client.post(
        "/console/training/jobs", data=data, headers=headers, follow_redirects=False
    )


def stored_uploads(settings: Settings) -> list[Path]:
    return sorted((settings.data_dir / "uploads").glob("*/*.csv"))


def job_ids(api: Api) -> list[str]:
    with api.direct.jobs() as jobs:
        return [job.job_id for job in jobs.recent(10)]


def audit_events(api: Api, action: str) -> list[tuple[str, str | None]]:
    with api.direct.runtime.session() as session:
        events = AuditTrail(session).page(AuditFilter(action=action), limit=10).events
        return [(event.actor, event.target) for event in events]


def test_an_upload_shows_its_counts_and_a_job_started_from_it_ends_with_scores(
    api: Api, people: Registry
) -> None:
    token = sign_in(api, "trainer")
    assert 'href="/console/training"' in api.client.get("/console/models").text
    rows = shipped_rows("Teh", 12) + shipped_rows("Kopi", 8) + [("teh celup lokal", "Langka")]
    response = upload(api, token, "new.csv", csv_bytes(rows))
    assert response.status_code == 303, response.text
    found = UPLOAD_LOCATION.fullmatch(response.headers["location"])
    assert found, response.headers["location"]
    name = found.group(1)

    page = api.client.get(response.headers["location"])
    assert page.status_code == 200, page.text
    assert 'data-testid="rows">21<' in page.text and 'data-testid="categories">3<' in page.text
    counts = re.findall(r'<tr><td>([^<]+)</td><td class="num">(\d+)</td></tr>', page.text)
    assert counts == [("Teh", "12"), ("Kopi", "8"), ("Langka", "1")]
    assert "1 category has fewer than 5 rows" in page.text
    assert f"<td>{rows[0][0]}</td>" in page.text
    assert f'name="upload" value="{name}"' in page.text
    assert audit_events(api, "dataset.upload")[0][0] == "trainer"

    # The API's allow-list and bounds, named on a page; no job starts.
    for algorithm, params, needle in [
        ("logistic_regression", '{"clf__alpha": [0.1]}', "cannot be set for logistic_regression"),
        ("logistic_regression", '{"clf__C": [1e9]}', "a number from 0.001 to 1000"),
        ("logistic_regression", "[1, 2]", "must be a JSON object"),
        ("logistic_regression", '{"clf__C": ' + "[" * 1900 + "]" * 1900 + "}", "too deeply"),
        ("rm -rf", "", "algorithm: Input should be"),
    ]:
        refused = start(api, token, name, algorithm=algorithm, params=params)
        assert refused.status_code == 422 and needle in refused.text, (params, refused.text)
    assert job_ids(api) == []

    started = start(
        api,
        token,
        name,
        algorithm="logistic_regression",
        params='{"clf__C": [1, 10]}',
        include_feedback="on",
        activate="on",
    )
    assert started.status_code == 303, started.text
    job = JOB_LOCATION.fullmatch(started.headers["location"])
    assert job, started.headers["location"]
    job_id = job.group(1)
    status = poll_json(
        lambda: api.client.get(f"/console/training/jobs/{job_id}/status"),
        lambda body: bool(body["finished"]),
        timeout=600,
        what=f"training job {job_id}",
        interval=1.0,
    )
    assert status["status"] == "succeeded" and status["percent"] == 100, status
    # Logistic regression fits in one piece, inside scikit-learn: nothing to count.
    assert status["fits"] is None

    page = api.client.get(f"/console/training/jobs/{job_id}")
    assert page.status_code == 200
    assert 'data-testid="status">succeeded<' in page.text
    assert 'data-field="fits">not counted<' in page.text
    assert re.search(r'data-testid="macro-f1">\d\.\d{3}<', page.text)
    assert 'href="/console/models/v1.0.1"' in page.text
    assert 'data-testid="best-params">{"clf__C": ' in page.text
    assert "category &#39;Langka&#39; left out of this job" in page.text
    assert "data-job-status-url" not in page.text
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assert f'data-job="{job_id}"' in api.client.get("/console/training").text
    assert audit_events(api, "training.start") == [("trainer", job_id)]
    with api.direct.jobs() as jobs:
        recorded = jobs.get(job_id)
        assert recorded.requested_by == "trainer"
        assert recorded.data_path is not None and recorded.data_path.endswith(name)


def test_a_bad_csv_gets_a_page_naming_the_problem(api: Api, people: Registry) -> None:
    token = sign_in(api, "trainer")
    big = csv_bytes([(f"susu ultra {i} " + "x" * 60, "Susu") for i in range(300)])
    assert len(big) > api.settings.max_upload_bytes
    cases = [
        ("columns.csv", csv_bytes([("a", "b")], header=("x", "y")), 422, "missing product name"),
        (
            "latin.csv",
            "product_name,category\ncafé susu,Kopi\n".encode("latin-1"),
            422,
            "not UTF-8",
        ),
        ("big.csv", big, 413, "larger than the upload limit of 8,192 bytes"),
        ("teh.csv", csv_bytes(shipped_rows("Teh", 6)), 422, "at least 2 categories"),
        ('<img src=x onerror="alert(1)">.csv', b"\xff\xfeproduct_name", 422, "not UTF-8"),
    ]
    for name, content, status, needle in cases:
        response = upload(api, token, name, content)
        assert response.status_code == status, (name, response.text)
        assert response.headers["content-type"].startswith("text/html")
        assert needle in response.text, (name, response.text)
    assert "<img src=x" not in response.text and "&lt;img src=x" in response.text
    missing = api.client.post(
        "/console/training/upload", data={"csrf_token": token}, follow_redirects=False
    )
    assert missing.status_code == 422 and "Choose a CSV file" in missing.text
    assert stored_uploads(api.settings) == []
    assert audit_events(api, "dataset.upload") == []


class _LauncherThatCannotStart:
    """A launcher whose process start fails, as on a machine out of pids or memory."""

    def launch(self, job_id: str) -> None:
        raise OSError(11, "<b>no pids</b> left")


def test_a_failed_job_shows_its_error_escaped(api: Api, people: Registry) -> None:
    token = sign_in(api, "trainer")
    app: FastAPI = api.client.app  # type: ignore[assignment]
    app.dependency_overrides[get_launcher] = _LauncherThatCannotStart
    try:
        refused = start(api, token)
    finally:
        app.dependency_overrides.clear()
    assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    assert "could not be started" in refused.text
    [job_id] = job_ids(api)

    page = api.client.get(f"/console/training/jobs/{job_id}")
    assert page.status_code == 200 and 'data-testid="status">failed<' in page.text
    assert "&lt;b&gt;no pids&lt;/b&gt; left" in page.text and "<b>no pids" not in page.text
    status = api.client.get(f"/console/training/jobs/{job_id}/status").json()
    assert status["finished"] is True and status["status"] == "failed"
    # As in the API, only a conflict is audited as a refused start; the failed job is
    # this one's record.
    assert audit_events(api, "training.start") == []


def test_a_review_only_person_is_refused_on_every_training_url(api: Api, people: Registry) -> None:
    upload_name = "20260101-000000-0123456789abcdef.csv"
    pages = [
        "/console/training",
        f"/console/training/uploads/{upload_name}",
        "/console/training/jobs/00000000-0000-0000-0000-000000000000",
    ]
    status_url = "/console/training/jobs/00000000-0000-0000-0000-000000000000/status"
    rows = csv_bytes(shipped_rows("Teh", 5) + shipped_rows("Kopi", 5))

    # Signed out: pages and forms send to the sign-in page, the JSON says 401.
    for path in pages:
        assert api.client.get(path, follow_redirects=False).headers["location"] == (
            "/console/sign-in"
        )
    assert api.client.get(status_url).status_code == 401
    assert upload(api, None, "a.csv", rows).status_code == 303
    assert start(api, None).status_code == 303

    token = sign_in(api, "reviewer-1")
    assert 'href="/console/training"' not in api.client.get("/console/models").text
    for path in pages:
        response = api.client.get(path)
        assert response.status_code == 403, path
        assert "train or admin scope" in response.text
    assert api.client.get(status_url).status_code == 403
    # Not even with the person's own valid CSRF token.
    assert upload(api, token, "a.csv", rows).status_code == 403
    assert start(api, token).status_code == 403
    assert stored_uploads(api.settings) == [] and job_ids(api) == []

    # An admin sees everything, training included.
    sign_in(api, "boss")
    assert api.client.get("/console/training").status_code == 200


def test_training_posts_need_the_csrf_token_and_this_origin(api: Api, people: Registry) -> None:
    token = sign_in(api, "trainer")
    rows = csv_bytes(shipped_rows("Teh", 5) + shipped_rows("Kopi", 5))
    cross_site = [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}]
    for headers in cross_site:
        assert upload(api, token, "a.csv", rows, headers).status_code == 403
        assert start(api, token, headers=headers).status_code == 403
    for forged in (None, "forged", token[:-1]):
        assert upload(api, forged, "a.csv", rows).status_code == 403
        assert start(api, forged).status_code == 403
    assert stored_uploads(api.settings) == [] and job_ids(api) == []
    assert audit_events(api, "dataset.upload") == []


def test_upload_names_are_text_never_paths(api: Api, people: Registry) -> None:
    rows = csv_bytes(shipped_rows("Teh", 5) + shipped_rows("Kopi", 5))
    boss = sign_in(api, "boss")
    theirs = upload(api, boss, "boss.csv", rows)
    assert theirs.status_code == 303
    token = sign_in(api, "trainer")
    hostile = "../../../../outside<script>.csv"
    response = upload(api, token, hostile, rows)
    assert response.status_code == 303, response.text
    assert UPLOAD_LOCATION.fullmatch(response.headers["location"])
    uploads_dir = (api.settings.data_dir / "uploads").resolve()
    assert all(p.resolve().is_relative_to(uploads_dir) for p in stored_uploads(api.settings))
    assert len(stored_uploads(api.settings)) == 2
    assert not list(api.settings.data_dir.parent.rglob("outside*"))

    # Only the person's own uploads, under the names the store gave them, can be opened.
    for path in (
        theirs.headers["location"],
        "/console/training/uploads/outside.csv",
        "/console/training/uploads/..%2F..%2Fsettings.json",
    ):
        refused = api.client.get(path)
        assert refused.status_code == 404, path
    assert api.client.get("/console/training/jobs/" + "x" * 500).status_code == 404
    assert api.client.get("/console/training/jobs/nope/status").status_code == 404
    # A job form naming anything but an upload of the store's names starts nothing.
    for name in ("../../etc/passwd", "../settings.json"):
        assert start(api, token, name).status_code == 422
    assert job_ids(api) == []
