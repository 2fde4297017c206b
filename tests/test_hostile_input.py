"""Hostile input: malformed, oversized and odd requests get a 4xx JSON answer, never a 5xx."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from prometheus_client.parser import text_string_to_metric_families
from schemathesis.checks import not_a_server_error

from tests.support import Api, LiveServer, start_server

SUSU = b'{"product_name": "susu ultra coklat 250ml"}'
EXAMPLES_PER_OPERATION = 20


@pytest.fixture
def api_server_exceptions() -> bool:
    """For conftest's `api`: a server error reaches the test as the 500 a client would see."""
    return False


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "application/json", 400, id="deep-array"),
        pytest.param(
            b'{"product_name":' + b'{"a":' * 50_000 + b"1" + b"}" * 50_001,
            "application/json",
            400,
            id="deep-object",
        ),
        pytest.param(b'{"product_name": "susu', "application/json", 422, id="truncated"),
        pytest.param(b'{"product_name": "su\x00su"}', "application/json", 422, id="raw-nul"),
        pytest.param(b'{"product_name": "\\u0000"}', "application/json", 422, id="only-nul"),
        pytest.param(b'{"product_name": "\xff\xfe"}', "application/json", 400, id="bad-utf8"),
        pytest.param(SUSU, "text/plain", 422, id="text-plain"),
        pytest.param(b"<product>susu</product>", "application/xml", 422, id="xml"),
        pytest.param(b"product_name=susu", "application/x-www-form-urlencoded", 422, id="form"),
        pytest.param(b"[1, 2]", "application/json", 422, id="array"),
        pytest.param(b"", "application/json", 422, id="empty"),
        pytest.param(
            b'{"product_name": "susu", "top_k": 1e999}', "application/json", 422, id="infinity"
        ),
        pytest.param(b'{"product_name": "susu", "top_k": NaN}', "application/json", 422, id="nan"),
        pytest.param(
            b'{"product_name": "susu", "top_k": ' + b"9" * 5000 + b"}",
            "application/json",
            400,
            id="huge-int",
        ),
        pytest.param(
            b'{"product_name": "' + b"a" * 5_000_000 + b'"}', "application/json", 413, id="5MB"
        ),
    ],
)
def test_malformed_bodies_get_a_json_4xx(
    api: Api, body: bytes, content_type: str, status: int
) -> None:
    client, auth = api.client, api.auth
    response = client.post(
        "/predict/", content=body, headers={**auth, "Content-Type": content_type}
    )
    assert response.status_code == status, response.text[:300]
    assert "detail" in response.json()


def test_oversized_headers_get_431_json(api: Api) -> None:
    client, auth = api.client, api.auth
    response = client.post("/predict/", content=SUSU, headers={**auth, "X-Padding": "a" * 40_000})
    assert response.status_code == 431
    assert "limit" in response.json()["detail"]


def test_wrong_methods_and_paths_get_json(api: Api) -> None:
    client, auth = api.client, api.auth
    assert client.delete("/predict/", headers=auth).json() == {"detail": "Method Not Allowed"}
    assert client.get("/no/such/%00path", headers=auth).status_code == 404
    assert client.get("/training/%ff%fe", headers=auth).status_code == 404
    multipart = client.post(
        "/datasets/", content=b"abc", headers={**auth, "Content-Type": "multipart/form-data"}
    )
    assert multipart.status_code == 400 and "detail" in multipart.json()


@pytest.mark.e2e
def test_huge_headers_reach_a_live_server_as_json_431(tmp_path: Path) -> None:
    process, server = start_server(tmp_path)
    try:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2_000_000 + b"\r\n\r\n"
            )
            head = sock.recv(65536)
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert head.startswith(b"HTTP/1.1 431")
    assert b"application/json" in head


# --- Schemathesis: generated requests for every operation, with a valid token --------------


@pytest.fixture(scope="module")
def fuzz_server(
    database_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, str]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    unlimited = {
        "RATE_LIMIT_PREDICT": "unlimited",
        "RATE_LIMIT_TRAIN": "unlimited",
        "AUTH_FAILURE_LIMIT": "100000/minute",
        "AUTH_FAILURE_LIMIT_PER_ADDRESS": "100000/minute",
    }
    process, server = start_server(tmp, unlimited, train_first=True)
    try:
        assert server.cli("add", "Fuzzer", "fuzzer", "fuzzer-secret-123").returncode == 0
        token = httpx.post(
            f"{server.url}/auth/token",
            data={"grant_type": "client_credentials"},
            auth=("fuzzer", "fuzzer-secret-123"),
        ).json()["access_token"]
        yield server, token
    finally:
        process.terminate()
        process.wait(timeout=15)
    log = server.log.read_text()
    assert "Traceback" not in log, log[-3000:]


def fuzzer(operation: schemathesis.APIOperation, base_url: str, token: str) -> Callable[[], None]:
    """A Hypothesis test of one operation: generated requests, none may get a 5xx."""
    # The token endpoint authenticates clients, not bearers.
    auth = {} if operation.path == "/auth/token" else {"Authorization": f"Bearer {token}"}

    # Bounded and seeded: a few hundred requests in all, the same ones every run.
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(case=operation.as_strategy())
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base_url, headers=auth, checks=[not_a_server_error])

    return fuzz


@pytest.mark.e2e
def test_generated_requests_never_cause_a_server_error(
    fuzz_server: tuple[LiveServer, str],
) -> None:
    server, token = fuzz_server
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        fuzzer(operation, server.url, token)()
    # The run really sent a few hundred requests (the server counts them).
    metrics = httpx.get(f"{server.url}/metrics").text
    sent = sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "garoupa_http_requests_total"
    )
    assert sent >= 200, sent
    assert not [
        line
        for line in metrics.splitlines()
        if line.startswith("garoupa_http_requests_total") and 'status="5' in line
    ]
