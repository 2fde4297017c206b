"""Two replicas (two uvicorn servers, two workers each) sharing PostgreSQL, Redis and MODEL_DIR.

Runs in the PostgreSQL pass of the suite only, and needs Redis on 127.0.0.1:6379.
"""

from __future__ import annotations

import csv
import io
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.polling import poll_json
from tests.support import (
    REDIS_URL,
    SHIPPED_CSV,
    LiveServer,
    live_database_url,
    redis_available,
    start_server,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not redis_available(), reason="no Redis server on 127.0.0.1:6379"),
]

SUSU = {"product_name": "susu ultra coklat 250ml"}
RUN = uuid.uuid4().hex[:6]


class Replicas:
    def __init__(self, a: LiveServer, b: LiveServer) -> None:
        self.a, self.b = a, b

    def add_client(self, name: str) -> tuple[str, str]:
        client_id, secret = f"{name}-{RUN}", f"{name}-secret-{RUN}"
        assert self.a.cli("add", name, client_id, secret).returncode == 0
        return client_id, secret

    @staticmethod
    def token(server: LiveServer, client_id: str, secret: str) -> str:
        response = httpx.post(
            f"{server.url}/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


@pytest.fixture(scope="module")
def replicas(database_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    if database_backend != "postgresql":
        pytest.skip("replicas share PostgreSQL: this runs in the PostgreSQL pass")
    shared = tmp_path_factory.mktemp("shared")
    env = {
        "DATABASE_URL": live_database_url(shared),
        "REDIS_URL": REDIS_URL,
        "MODEL_DIR": str(shared / "models"),
        "DATA_DIR": str(shared / "data"),
        # One public issuer for both, as behind one load balancer.
        "JWT_ISSUER": "http://garoupa.replicas.test",
        "RATE_LIMIT_PREDICT": "300/minute",
        "MODEL_REFRESH_SECONDS": "1",
    }
    first, server_a = start_server(tmp_path_factory.mktemp("a"), env, train_first=True, workers=2)
    second, server_b = start_server(tmp_path_factory.mktemp("b"), env, workers=2)
    try:
        yield Replicas(server_a, server_b)
    finally:
        for process in (first, second):
            process.terminate()
            process.wait(timeout=15)


def served_versions(server: LiveServer, token: str, n: int) -> set[str]:
    versions = set()
    for _ in range(n):
        # A new connection per request spreads requests over the server's workers.
        response = httpx.post(
            f"{server.url}/predict/", json=SUSU, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        versions.add(response.json()["model_version"])
    return versions


def test_training_through_a_is_served_by_all_of_bs_workers_within_5_seconds(
    replicas: Replicas,
) -> None:
    client_id, secret = replicas.add_client("trainer")
    token = replicas.token(replicas.a, client_id, secret)
    auth = {"Authorization": f"Bearer {token}"}
    assert served_versions(replicas.b, token, 10) == {"v1.0.0"}

    with SHIPPED_CSV.open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["category"] in ("Teh", "Kopi")][:40]
    buffer = io.StringIO()
    csv.DictWriter(buffer, ["product_name", "category"]).writeheader()
    csv.DictWriter(buffer, ["product_name", "category"]).writerows(rows)
    upload = httpx.post(
        f"{replicas.a.url}/datasets/",
        files={"file": ("more.csv", buffer.getvalue().encode(), "text/csv")},
        headers=auth,
    )
    assert upload.status_code == 201, upload.text
    started = httpx.post(
        f"{replicas.a.url}/training/",
        json={"new_data_path": upload.json()["data_path"], "algorithm": "logistic_regression"},
        headers=auth,
    )
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]

    # Replica B reports the job replica A started: its state lives in PostgreSQL.
    job = poll_json(
        lambda: httpx.get(f"{replicas.b.url}/training/{job_id}", headers=auth),
        lambda job: job["status"] in ("succeeded", "failed"),
        timeout=600,
        what=f"training job {job_id} seen from replica B",
    )
    assert job["status"] == "succeeded", job["error"]
    finished = time.monotonic()
    while served_versions(replicas.b, token, 1) != {"v1.0.1"}:
        assert time.monotonic() - finished < 5, "replica B still serves v1.0.0 after 5 s"
        time.sleep(0.05)
    time.sleep(max(0.0, 5 - (time.monotonic() - finished)))
    # Five seconds on, every worker of both replicas serves the new version.
    assert served_versions(replicas.b, token, 40) == {"v1.0.1"}
    assert served_versions(replicas.a, token, 40) == {"v1.0.1"}


def test_a_deactivated_client_is_refused_by_both_replicas_within_5_seconds(
    replicas: Replicas,
) -> None:
    client_id, secret = replicas.add_client("leaver")
    token = replicas.token(replicas.b, client_id, secret)
    assert served_versions(replicas.a, token, 1)
    assert replicas.a.cli("deactivate", client_id).returncode == 0
    deactivated = time.monotonic()
    refused: set[str] = set()
    while refused != {replicas.a.url, replicas.b.url}:
        both = {replicas.a.url, replicas.b.url}
        assert time.monotonic() - deactivated < 5, f"still accepted by {both - refused}"
        for server in (replicas.a, replicas.b):
            response = httpx.post(
                f"{server.url}/predict/", json=SUSU, headers={"Authorization": f"Bearer {token}"}
            )
            if response.status_code == 401:
                refused.add(server.url)
        time.sleep(0.05)


def test_simultaneous_training_requests_to_both_replicas_make_exactly_one_job(
    replicas: Replicas,
) -> None:
    client_id, secret = replicas.add_client("racer")
    token = replicas.token(replicas.a, client_id, secret)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def start(server: LiveServer) -> None:
        barrier.wait()
        response = httpx.post(
            f"{server.url}/training/",
            json={"algorithm": "logistic_regression", "activate": False},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=start, args=(s,)) for s in (replicas.a, replicas.b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [202, 409]
    # Let the job finish so later tests start from a free slot.
    auth = {"Authorization": f"Bearer {token}"}
    poll_json(
        lambda: httpx.get(f"{replicas.a.url}/training/", headers=auth),
        lambda body: body["jobs"][0]["status"] not in ("queued", "running"),
        timeout=600,
        what="the racing job to end",
        interval=0.3,
    )


def test_a_clients_rate_limit_is_counted_across_both_replicas(replicas: Replicas) -> None:
    client_id, secret = replicas.add_client("hasty")
    token = replicas.token(replicas.a, client_id, secret)
    headers = {"Authorization": f"Bearer {token}"}
    statuses = []
    with httpx.Client() as a, httpx.Client() as b:
        for i in range(320):
            client, server = (a, replicas.a) if i % 2 else (b, replicas.b)
            response = client.post(f"{server.url}/predict/", json=SUSU, headers=headers)
            statuses.append(response.status_code)
    # 300 per minute in all, not 300 per replica (or per worker).
    assert statuses.count(200) == 300
    assert set(statuses[300:]) == {429}


def test_a_replica_started_later_serves_the_active_version(
    replicas: Replicas, tmp_path: Path
) -> None:
    env = {
        k: v
        for k, v in replicas.a.env.items()
        if k in ("DATABASE_URL", "REDIS_URL", "MODEL_DIR", "DATA_DIR", "JWT_ISSUER")
    }
    process, late = start_server(tmp_path, env)
    try:
        client_id, secret = replicas.add_client("late")
        token = replicas.token(late, client_id, secret)
        active = httpx.get(
            f"{replicas.a.url}/models/active", headers={"Authorization": f"Bearer {token}"}
        ).json()["version"]
        assert served_versions(late, token, 5) == {active}
    finally:
        process.terminate()
        process.wait(timeout=15)


def _following(server: LiveServer, version: str) -> float:
    """How many live workers of `server` sample for `version`'s shadow run (/metrics)."""
    text = httpx.get(f"{server.url}/metrics").text
    found = re.search(
        rf'^garoupa_shadow_following\{{version="{re.escape(version)}"\}} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


def test_a_shadow_runs_counts_add_up_over_both_replicas_and_their_workers(
    replicas: Replicas,
) -> None:
    client_id, secret = replicas.add_client("shadower")
    token = replicas.token(replicas.a, client_id, secret)
    auth = {"Authorization": f"Bearer {token}"}
    models = httpx.get(f"{replicas.a.url}/models/", headers=auth).json()["models"]
    inactive = [m["version"] for m in models if not m["is_active"]]
    if not inactive:
        started = httpx.post(
            f"{replicas.a.url}/training/",
            json={"algorithm": "logistic_regression", "activate": False},
            headers=auth,
        )
        assert started.status_code == 202, started.text
        job = poll_json(
            lambda: httpx.get(
                f"{replicas.a.url}/training/{started.json()['job_id']}", headers=auth
            ),
            lambda job: job["status"] in ("succeeded", "failed"),
            timeout=600,
            what="a candidate version's training",
        )
        assert job["status"] == "succeeded", job["error"]
        inactive = [job["new_model_version"]]
    candidate = inactive[0]
    shadow = f"/models/{candidate}/shadow"
    opened = httpx.post(f"{replicas.b.url}{shadow}", json={"sample_rate": 1.0}, headers=auth)
    assert opened.status_code == 201, opened.text
    try:
        deadline = time.monotonic() + 60
        while any(_following(server, candidate) < 2 for server in (replicas.a, replicas.b)):
            assert time.monotonic() < deadline, "not every worker follows the run after 60 s"
            time.sleep(0.2)
        with SHIPPED_CSV.open(encoding="utf-8", newline="") as handle:
            names = [r["product_name"] for r in csv.DictReader(handle)][:200]
        sent = 0
        with httpx.Client() as a, httpx.Client() as b:
            for i in range(40):
                client, server = (a, replicas.a) if i % 2 else (b, replicas.b)
                batch = names[5 * i : 5 * i + 5]
                answer = client.post(
                    f"{server.url}/predict/batch", json={"product_names": batch}, headers=auth
                )
                assert answer.status_code == 200, answer.text
                single = client.post(f"{server.url}/predict/", json=SUSU, headers=auth)
                assert single.status_code == 200, single.text
                sent += len(batch) + 1
        # Each worker adds its part about once a second; the total never passes `sent`.
        report = poll_json(
            lambda: httpx.get(f"{replicas.a.url}{shadow}", headers=auth),
            lambda body: body["items_compared"] >= sent,
            timeout=60,
            what="every worker's shadow counts",
            interval=0.5,
        )
        assert report["items_compared"] == sent == 240
        assert sum(report["active"]["score_histogram"]) == sent
        assert sum(report["candidate"]["score_histogram"]) == sent
        flipped = sum(f["count"] for f in report["flips"])
        disagreed = round((1 - report["agreement_rate"]) * sent)
        assert flipped == disagreed if report["flips_total"] <= 50 else flipped <= disagreed
    finally:
        stopped = httpx.delete(f"{replicas.a.url}{shadow}", headers=auth)
        assert stopped.status_code == 200, stopped.text
