"""POST /datasets/ and the other body routes: no body is read before the bearer token is
checked, uploads are kept per client under a quota, expire, and are stored whole."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.crud import training_job as job_crud
from app.ml.training import TrainedModel
from app.services.datasets import UPLOAD_FOLDER, client_folder
from app.services.runtime import Runtime
from tests.support import (
    InProcess,
    LiveServer,
    Registry,
    bearer,
    install_model,
    make_settings,
    serve,
    start_server,
    token_for,
)

DAY = 86400.0
STORED_PATH = re.compile(r"^uploads/[0-9a-f]{16}/\d{8}-\d{6}-[0-9a-f]{16}\.csv$")


def csv_bytes(rows: list[tuple[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("product_name", "category"))
    writer.writerows(rows)
    return buffer.getvalue().encode()


def small_csv(tag: str = "a") -> bytes:
    return csv_bytes([(f"susu {tag} {i}", "Susu") for i in range(3)] + [(f"teh {tag}", "Teh")])


class Uploads:
    """A running app with a `train` client, speaking real HTTP through TestClient."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.registry = Registry(client.app)  # type: ignore[arg-type]
        self.registry.add()
        self.auth = bearer(token_for(client))

    @property
    def runtime(self) -> Runtime:
        return InProcess(self.client).runtime

    def upload(
        self, content: bytes, name: str = "new.csv", auth: dict[str, str] | None = None
    ) -> httpx.Response:
        return self.client.post(
            "/datasets/",
            files={"file": (name, content, "text/csv")},
            headers=self.auth if auth is None else auth,
        )


@contextmanager
def open_uploads(settings: Settings, trained: TrainedModel) -> Iterator[Uploads]:
    install_model(settings, trained)
    with serve(settings) as client:
        yield Uploads(client, settings)


@pytest.fixture
def uploads(tmp_path: Path, tiny_model: TrainedModel) -> Iterator[Uploads]:
    with open_uploads(make_settings(tmp_path), tiny_model) as api:
        yield api


# --- 7a: an upload is a file being stored -----------------------------------------------------


def test_a_small_incremental_upload_over_30_categories_is_accepted(uploads: Uploads) -> None:
    # 300 valid rows; several categories have fewer rows than a training split needs.
    counts = [1, 2, 3, 4] + [11] * 24 + [3, 2]
    rows = [
        (f"produk {c} nomor {i}", f"Kategori {c:02d}")
        for c, n in enumerate(counts)
        for i in range(n)
    ]
    rows += [(f"produk tambahan {i}", "Kategori 29") for i in range(300 - len(rows))]
    assert len(rows) == 300 and len({label for _, label in rows}) == 30
    response = uploads.upload(csv_bytes(rows))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["rows"] == 300 and body["categories"] == 30
    assert body["class_counts"]["Kategori 00"] == 1


def test_the_client_file_name_never_becomes_a_path(uploads: Uploads) -> None:
    response = uploads.upload(small_csv(), name="../../../etc/cron.d/x.csv")
    assert response.status_code == 201, response.text
    data_path = response.json()["data_path"]
    assert STORED_PATH.match(data_path), data_path
    assert data_path.split("/")[1] == client_folder("svc")
    assert (uploads.settings.data_dir / data_path).read_bytes() == small_csv()


# --- 6: quota and retention -------------------------------------------------------------------


def test_uploads_past_the_file_quota_get_413_naming_the_quota(
    tmp_path: Path, tiny_model: TrainedModel
) -> None:
    settings = make_settings(tmp_path, upload_quota_files=2)
    with open_uploads(settings, tiny_model) as api:
        assert api.upload(small_csv("a")).status_code == 201
        assert api.upload(small_csv("b")).status_code == 201
        refused = api.upload(small_csv("c"))
        assert refused.status_code == 413
        detail = refused.json()["detail"]
        assert "upload quota exceeded" in detail and "2 files" in detail
        # The quota is per client: another client still has its own.
        api.registry.add("other")
        other = bearer(token_for(api.client, "other"))
        assert api.upload(small_csv("d"), auth=other).status_code == 201


def padded_csv(tag: str) -> bytes:
    return csv_bytes(
        [(f"susu {tag} nomor {i} ukuran besar", "Susu") for i in range(20)]
        + [(f"teh {tag}", "Teh")]
    )


def test_uploads_past_the_byte_quota_get_413(tmp_path: Path, tiny_model: TrainedModel) -> None:
    first = padded_csv("a")
    settings = make_settings(tmp_path, upload_quota_bytes=2 * len(first) + 10)
    with open_uploads(settings, tiny_model) as api:
        assert api.upload(first).status_code == 201
        assert api.upload(padded_csv("b")).status_code == 201
        refused = api.upload(padded_csv("c"))
        assert refused.status_code == 413
        assert f"{2 * len(first) + 10} bytes" in refused.json()["detail"]
        stored = list((api.settings.data_dir / UPLOAD_FOLDER / client_folder("svc")).glob("*.csv"))
        assert len(stored) == 2


def age(path: Path, days: float) -> None:
    then = time.time() - days * DAY
    os.utime(path, (then, then))


def open_job_reading(runtime: Runtime, data_dir: Path, data_path: str) -> None:
    """Record a queued job that will read `data_path` (no process is started)."""
    with runtime.session() as session:
        job_crud.create_job(
            session,
            job_id=str(uuid.uuid4()),
            source="api",
            requested_by="svc",
            new_model_version="v9.9.9",
            data_path=data_path,
            algorithm="logreg",
            params={},
            options={"data_file": str((data_dir / data_path).resolve())},
            created_at=datetime.now(UTC),
        )
        session.commit()


def test_expired_uploads_are_purged_but_one_an_open_job_reads_is_kept(uploads: Uploads) -> None:
    data_dir = uploads.settings.data_dir
    expired, in_use, fresh = (
        uploads.upload(small_csv(tag)).json()["data_path"] for tag in ("old", "job", "new")
    )
    age(data_dir / expired, 31)
    age(data_dir / in_use, 31)
    age(data_dir / fresh, 29)
    open_job_reading(uploads.runtime, data_dir, in_use)
    # The next upload runs the client's housekeeping pass.
    assert uploads.upload(small_csv("next")).status_code == 201
    assert not (data_dir / expired).exists()
    assert (data_dir / in_use).exists()
    assert (data_dir / fresh).exists()


def test_expired_uploads_do_not_count_against_the_quota(
    tmp_path: Path, tiny_model: TrainedModel
) -> None:
    settings = make_settings(tmp_path, upload_quota_files=1)
    with open_uploads(settings, tiny_model) as api:
        first = api.upload(small_csv("a")).json()["data_path"]
        assert api.upload(small_csv("b")).status_code == 413
        age(settings.data_dir / first, 31)
        assert api.upload(small_csv("b")).status_code == 201


def test_the_server_purges_expired_uploads_of_every_client_when_it_starts(
    tmp_path: Path, tiny_model: TrainedModel
) -> None:
    settings = make_settings(tmp_path, upload_retention_days=7)
    folder = settings.data_dir / UPLOAD_FOLDER
    old_layout = folder / "20240101-000000-0000aaaa.csv"
    someone = folder / client_folder("someone") / "20240101-000000-0123456789abcdef.csv"
    recent = folder / client_folder("someone") / "20240601-000000-0123456789abcdef.csv"
    not_an_upload = settings.data_dir / "products.csv"
    for path in (old_layout, someone, recent, not_an_upload):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(small_csv())
        age(path, 8)
    age(recent, 6)
    with open_uploads(settings, tiny_model):
        deadline = time.monotonic() + 10
        while (old_layout.exists() or someone.exists()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not old_layout.exists() and not someone.exists()
        assert recent.exists() and not_an_upload.exists()


# --- 5: the token is checked before the body is read -------------------------------------------

BODY_ROUTES = ["/datasets/", "/training/", "/predict/batch", "/predict/", "/feedback/"]


def test_an_unauthenticated_body_gets_the_dependencys_own_401(uploads: Uploads) -> None:
    # The same answer as a body-less protected route, where the dependency refuses.
    reference = uploads.client.get("/training/")
    assert reference.status_code == 401
    for path in BODY_ROUTES:
        response = uploads.client.post(path, content=b"x" * 1000)
        assert response.status_code == 401, path
        assert response.json() == reference.json()
        assert response.headers["www-authenticate"] == reference.headers["www-authenticate"]


def test_a_bad_token_on_a_body_route_gets_the_dependencys_invalid_token(uploads: Uploads) -> None:
    bad = {"Authorization": "Bearer not.a.jwt"}
    reference = uploads.client.get("/training/", headers=bad)
    response = uploads.upload(small_csv(), auth=bad)
    assert response.status_code == reference.status_code == 401
    assert response.json() == reference.json()
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"] == reference.headers["www-authenticate"]


def test_a_revoked_token_is_refused_before_the_body(uploads: Uploads) -> None:
    uploads.registry.deactivate("svc")
    deadline = time.monotonic() + 6
    response = uploads.upload(small_csv())
    while response.status_code != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
        response = uploads.upload(small_csv())
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_scopes_are_still_checked_after_the_gate(uploads: Uploads) -> None:
    predict_only = bearer(token_for(uploads.client, scope="predict"))
    response = uploads.upload(small_csv(), auth=predict_only)
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


@pytest.fixture(scope="module")
def live_server(
    database_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    process, server = start_server(tmp_path_factory.mktemp("gate"))
    try:
        yield server
    finally:
        process.terminate()
        process.wait(timeout=15)


def send_headers_then_stall(
    server: LiveServer, path: str, length: int = 40 * 1024 * 1024, extra: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """Announce a `length`-byte body, send 8 KB of it, and read the server's answer."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=xyz\r\n"
            + f"Content-Length: {length}\r\n".encode()
            + extra
            + b"\r\n"
            + b"--xyz\r\n"
            + b'Content-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
            + b"a" * 8192
        )
        # The rest is never sent: a server waiting for it times out here.
        answer = b""
        while True:
            head, sep, body = answer.partition(b"\r\n\r\n")
            if sep:
                lines = head.decode("latin-1").split("\r\n")
                headers = dict(
                    (name.strip().lower(), value.strip())
                    for name, _, value in (line.partition(":") for line in lines[1:])
                )
                if len(body) >= int(headers["content-length"]):
                    return int(lines[0].split()[1]), headers, body
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {answer!r}"
            answer += chunk


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("path", "length"),
    # Each just under its route's body limit (MAX_UPLOAD_BYTES, MAX_REQUEST_BYTES),
    # which is refused on Content-Length alone.
    [("/datasets/", 40 * 1024 * 1024), ("/training/", 1_000_000), ("/predict/batch", 1_000_000)],
)
def test_a_live_server_refuses_an_anonymous_body_before_reading_it(
    live_server: LiveServer, path: str, length: int
) -> None:
    status, headers, body = send_headers_then_stall(live_server, path, length)
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer realm="garoupa"'
    assert headers["connection"] == "close"
    assert json.loads(body) == {"detail": "Not authenticated"}


@pytest.mark.e2e
def test_a_live_server_refuses_a_forged_token_before_reading_the_body(
    live_server: LiveServer,
) -> None:
    status, headers, body = send_headers_then_stall(
        live_server,
        "/datasets/",
        extra=b"Authorization: Bearer eyJhbGciOiJub25lIn0.e30.\r\n",
    )
    assert status == 401
    assert headers["www-authenticate"].startswith('Bearer realm="garoupa", error="invalid_token"')
    assert json.loads(body)["error"] == "invalid_token"


@pytest.mark.parametrize(
    "category",
    ['=HYPERLINK("http://x")', "Susu" + "x" * 200, "Su\x1bsu", "Susu\u202e"],
    ids=["formula", "long", "escape", "bidi"],
)
def test_an_upload_with_an_unsafe_category_is_a_422_naming_it(
    uploads: Uploads, category: str
) -> None:
    rows = [(f"susu {i}", "Susu") for i in range(3)] + [("teh botol", category)]
    response = uploads.upload(csv_bytes(rows))
    assert response.status_code == 422
    assert "category" in response.json()["detail"]
