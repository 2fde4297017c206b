"""The prediction log: every prediction recorded off the request path, read back by its
client (history, statistics, CSV export) and by admins, and nothing lost silently."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import ConfigurationError, Settings, load_settings
from app.core.metrics import Metrics, setup_metrics
from app.crud import prediction_log as crud
from app.db.database import open_database
from app.db.models import PredictionDaily, PredictionLogEntry
from app.ml.training import TrainedModel
from app.services.prediction_history import PredictionHistory, bounded_range, written_csv
from app.services.prediction_log import PredictionLog, _purge_lock
from tests.polling import poll_json
from tests.support import (
    SUSU,
    Api,
    Registry,
    bearer,
    database_url_for,
    make_settings,
    open_api,
    token_for,
)

ROW = ("susu ultra", "Susu", 0.9, False, True)


def logged(api: Api, path: str = "/predictions/history", **params: Any) -> dict[str, Any]:
    """GET `path` once every queued prediction is in the database."""
    assert api.direct.runtime.prediction_log.flush(timeout=30), "the log writer did not flush"
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def names_of(page: dict[str, Any]) -> list[str]:
    return [item["product_name"] for item in page["items"]]


def counter(name: str, **labels: str) -> float:
    """The value of a sample in this process's metrics, summed over the multiprocess files."""
    text = Metrics.render().decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (not want or "{" + want + "}" in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def other(api: Api) -> dict[str, str]:
    """A second `predict` client's auth header."""
    Registry(api.client.app).add("other", scopes="predict")  # type: ignore[arg-type]
    return bearer(token_for(api.client, "other"))


@pytest.fixture
def admin(api: Api) -> dict[str, str]:
    Registry(api.client.app).add("boss", scopes="admin")  # type: ignore[arg-type]
    return bearer(token_for(api.client, "boss"))


# --- recording ------------------------------------------------------------------------------


def test_single_and_batch_predictions_become_rows_with_what_was_answered(api: Api) -> None:
    single = api.client.post("/predict/", json=SUSU, headers={**api.auth, "X-Request-ID": "req-1"})
    batch = api.post("/predict/batch", json={"product_names": ["sabun mandi", "kopi kapal api"]})
    assert single.status_code == batch.status_code == 200

    page = logged(api)
    items = page["items"]
    assert names_of(page) == ["kopi kapal api", "sabun mandi", SUSU["product_name"]]
    answered = [*reversed(batch.json()["predictions"]), single.json()]
    for item, answer in zip(items, answered, strict=True):
        assert item["predicted_category"] == answer["predicted_category"]
        assert item["prediction_score"] == pytest.approx(answer["prediction_score"], abs=1e-12)
        assert item["needs_review"] == answer["needs_review"]
        assert item["in_scope"] == answer["in_scope"]
        assert item["model_version"] == "v1.0.0"
        assert item["client_id"] == "svc"
        assert item["latency_ms"] > 0
    assert [i["item"] for i in items] == [1, 0, 0]
    assert items[2]["request_id"] == "req-1"
    assert items[0]["request_id"] == items[1]["request_id"] == batch.headers["x-request-id"]
    assert api.get("/predictions/history").headers["cache-control"] == "no-store"


def test_a_client_sees_only_its_own_predictions(api: Api, other: dict[str, str]) -> None:
    api.post("/predict/", json={"product_name": "mine: susu bubuk"})
    api.client.post("/predict/", json={"product_name": "theirs: sabun"}, headers=other)
    assert names_of(logged(api)) == ["mine: susu bubuk"]
    theirs = api.client.get("/predictions/history", headers=other).json()
    assert names_of(theirs) == ["theirs: sabun"]
    # No parameter widens the view: unknown query parameters are refused, not ignored.
    widened = api.client.get("/predictions/history?client_id=svc", headers=other)
    assert widened.status_code == 422
    assert widened.json()["detail"][0]["loc"] == ["query", "client_id"]
    stats = api.client.get("/predictions/stats", headers=other).json()
    assert stats["total"] == 1
    export = api.client.get("/predictions/export.csv", headers=other).text
    assert "mine: susu bubuk" not in export and "theirs: sabun" in export


def test_history_pages_walk_every_row_once_newest_first(api: Api) -> None:
    names = [f"susu nomor {i}" for i in range(7)]
    for name in names:
        api.post("/predict/", json={"product_name": name})
    logged(api)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/predictions/history", params=params).json()
        seen += names_of(page)
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(names))
    assert pages == 3
    # A page that ends exactly at the last row says so.
    exact = api.get("/predictions/history", params={"limit": 7}).json()
    assert len(exact["items"]) == 7 and exact["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "fHh8"}, "cursor"),
        ({"since": "2026-01-01T00:00:00"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
        ({"needs_review": "perhaps"}, "needs_review"),
        ({"category": "x" * 101}, "category"),
    ],
)
def test_bad_query_parameters_are_422_naming_them(
    api: Api, params: dict[str, Any], field: str
) -> None:
    response = api.get("/predictions/history", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", field]


def test_filters_narrow_history_stats_and_export(api: Api) -> None:
    api.post("/predict/batch", json={"product_names": ["susu ultra", "sabun mandi lifebuoy"]})
    # A threshold above every score: flagged for review.
    api.post("/predict/", json={"product_name": "susu bendera", "min_score": 1.0})
    logged(api)
    susu = api.get("/predictions/history", params={"category": "Susu"}).json()
    assert sorted(names_of(susu)) == ["susu bendera", "susu ultra"]
    flagged = api.get("/predictions/history", params={"needs_review": "true"}).json()
    assert names_of(flagged) == ["susu bendera"]
    assert api.get("/predictions/history", params={"model_version": "v9.9.9"}).json()["items"] == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert api.get("/predictions/history", params={"since": future}).json()["items"] == []
    assert len(api.get("/predictions/history", params={"until": future}).json()["items"]) == 3

    stats = api.get("/predictions/stats", params={"category": "Susu"}).json()
    assert stats["total"] == 2
    assert stats["review_rate"] == 0.5
    assert [c["category"] for c in stats["per_category"]] == ["Susu"]
    rows = list(
        csv.DictReader(io.StringIO(api.get("/predictions/export.csv?needs_review=true").text))
    )
    assert [r["product_name"] for r in rows] == ["susu bendera"]


def test_stats_count_per_day_category_and_version(api: Api) -> None:
    api.post("/predict/batch", json={"product_names": ["susu ultra", "susu bendera", "sabun"]})
    stats = logged(api, "/predictions/stats")
    assert stats["total"] == 3
    assert sum(c["count"] for c in stats["per_category"]) == 3
    assert stats["per_category"][0] == {**stats["per_category"][0], "category": "Susu", "count": 2}
    assert stats["per_day"] == [
        {**stats["per_day"][0], "date": datetime.now(UTC).date().isoformat(), "count": 3}
    ]
    assert stats["per_model_version"][0]["model_version"] == "v1.0.0"
    assert 0 < stats["mean_score"] <= 1
    # The default range is the last 30 days; longer than 400 is refused.
    since = datetime.fromisoformat(stats["since"])
    until = datetime.fromisoformat(stats["until"])
    assert until - since == timedelta(days=30)
    too_long = api.get("/predictions/stats", params={"since": "2020-01-01T00:00:00Z"})
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["query", "since"]


def test_stats_of_nothing_are_zero_not_an_error(api: Api) -> None:
    stats = logged(api, "/predictions/stats")
    assert stats["total"] == 0
    assert stats["mean_score"] is None
    assert stats["per_day"] == stats["per_category"] == []


# --- CSV export -----------------------------------------------------------------------------

FORMULAS = [
    '=HYPERLINK("http://evil.example","susu")',
    "+SUM(A1) susu",
    "-2+3 susu",
    "@SUM(A1) susu",
]


def test_export_is_rfc4180_and_neutralises_formulas(api: Api) -> None:
    tricky = 'susu "ultra", 1L\nnext line'
    for name in [*FORMULAS, tricky]:
        assert api.post("/predict/", json={"product_name": name}).status_code == 200
    logged(api)
    response = api.get("/predictions/export.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="predictions.csv"'
    assert response.headers["cache-control"] == "no-store"
    raw = response.content.decode("utf-8")
    # RFC 4180: every record ends in CRLF; a field with a quote, comma or line break is
    # quoted with its quotes doubled.
    assert raw.endswith("\r\n")
    assert '"susu ""ultra"", 1L\nnext line"' in raw
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    exported = [r["product_name"] for r in rows]
    assert exported[0] == tricky
    assert exported[1:] == ["'" + f for f in reversed(FORMULAS)]
    # No exported cell starts with a character a spreadsheet would evaluate.
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), row
    assert set(rows[0]) == {
        "created_at",
        "client_id",
        "model_version",
        "product_name",
        "predicted_category",
        "prediction_score",
        "needs_review",
        "in_scope",
        "request_id",
        "item",
        "latency_ms",
    }


def test_export_streams_many_rows_in_order(api: Api) -> None:
    names = [f"susu kotak {i}" for i in range(1200)]
    for start in range(0, len(names), 400):
        api.post("/predict/batch", json={"product_names": names[start : start + 400]})
    logged(api)
    with api.client.stream("GET", "/predictions/export.csv", headers=api.auth) as response:
        chunks = list(response.iter_bytes())
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode(), newline="")))
    assert [r["product_name"] for r in rows] == list(reversed(names))


def test_postgresql_copy_export_writes_the_python_writers_bytes(writer_database: str) -> None:
    if not writer_database.startswith("postgresql"):
        pytest.skip("only PostgreSQL exports through COPY; SQLite has the Python writer alone")
    engine = create_engine(writer_database)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    names = ['susu "ultra", 1L\nnext line', "=1+1", "\tsusu", "\rsusu", "-susu", "@susu"]
    names += ["+susu", "susu ultra", "kopi é 🥛", "a;b", " spaced "]
    scores = [1.0, 0.0, 0.1, 1e-05, 0.123456789012345, 2 / 3, 0.5, 0.9999999999999999]
    latencies = [1.0005, 0.0, 12.3456, 2.5, 0.0004999, 1234.5675, 7.0]
    rows = [
        (
            (start + timedelta(seconds=i, microseconds=i * 7)).timestamp(),
            "svc" if i % 4 else "=svc",
            "v1.0.0",
            names[i % len(names)],
            "-Susu" if i % 5 == 0 else "Susu",
            scores[i % len(scores)],
            i % 2 == 0,
            i % 3 != 0,
            None if i % 2 else f"req-{i}",
            i % 4,
            latencies[i % len(latencies)],
        )
        for i in range(200)
    ]
    PredictionLog(engine, setup_metrics(), fraction=1.0, max_rows=1000).write_batch(rows)
    history = PredictionHistory(Session(engine), sessionmaker(engine))
    where = bounded_range(crud.LogFilter(since=start - timedelta(minutes=1)))
    try:
        copied = b"".join(history.export_csv(where))
        with Session(engine) as session:
            written = b"".join(written_csv(session, where))
    finally:
        engine.dispose()
    assert copied == written
    parsed = list(csv.DictReader(io.StringIO(copied.decode(), newline="")))
    assert len(parsed) == len(rows)
    assert parsed[-1]["product_name"] == names[0]  # oldest last, line break kept inside
    assert {r["client_id"] for r in parsed} == {"svc", "'=svc"}


def test_an_export_abandoned_half_way_gives_its_connection_back(writer_database: str) -> None:
    # A download the client drops closes the body's generator mid-stream: the COPY or
    # server cursor must end with it, and the pool's only connection work again.
    engine = create_engine(writer_database, pool_size=1, max_overflow=0, pool_timeout=10)
    now = datetime.now(UTC).timestamp()
    rows = [(now - i, "svc", "v1.0.0", f"susu {i} " + "x" * 100) + ROW[1:] for i in range(3000)]
    PredictionLog(engine, setup_metrics(), fraction=1.0, max_rows=5000).write_batch(
        [row + (None, 0, 1.0) for row in rows]
    )
    sessions = sessionmaker(engine)
    try:
        with sessions() as session:
            body = PredictionHistory(session, sessions).export_csv(crud.LogFilter())
            assert next(body).startswith(b"created_at,")
            next(body)
            body.close()
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(PredictionLogEntry)) == 3000
    finally:
        engine.dispose()


def test_a_bad_export_range_is_a_422_not_a_broken_download(api: Api) -> None:
    response = api.get("/predictions/export.csv", params={"since": "2001-01-01T00:00:00Z"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "since"]


# --- admin ----------------------------------------------------------------------------------


def test_admin_reads_every_clients_predictions(
    api: Api, other: dict[str, str], admin: dict[str, str]
) -> None:
    api.post("/predict/", json={"product_name": "mine: susu"})
    api.client.post("/predict/", json={"product_name": "theirs: sabun"}, headers=other)
    logged(api)
    everything = api.client.get("/admin/predictions", headers=admin).json()
    assert sorted(names_of(everything)) == ["mine: susu", "theirs: sabun"]
    one = api.client.get("/admin/predictions?client_id=other", headers=admin).json()
    assert names_of(one) == ["theirs: sabun"]
    export = api.client.get("/admin/predictions/export.csv", headers=admin)
    assert export.status_code == 200
    assert {r["client_id"] for r in csv.DictReader(io.StringIO(export.text))} == {"svc", "other"}
    one_export = api.client.get(
        "/admin/predictions/export.csv", params={"client_id": "other"}, headers=admin
    )
    assert {r["client_id"] for r in csv.DictReader(io.StringIO(one_export.text))} == {"other"}
    # Every admin export is in the audit trail: who took whose rows.
    audit = api.client.get("/admin/audit", params={"action": "admin.export"}, headers=admin)
    events = audit.json()["events"]
    assert [(e["actor"], e["target"]) for e in events] == [
        ("boss", "predictions:other"),
        ("boss", "predictions:*"),
    ]
    assert events[0]["detail"] == {"client_id": "other"}
    stats = api.client.get("/admin/stats", headers=admin).json()
    assert stats["predictions"]["total"] == 2
    assert {c["client_id"]: c["count"] for c in stats["per_client"]} == {"svc": 1, "other": 1}
    assert stats["active_model_version"] == "v1.0.0"
    assert stats["clients"] == {"total": 3, "active": 3}


@pytest.mark.parametrize(
    "path", ["/admin/predictions", "/admin/predictions/export.csv", "/admin/stats"]
)
def test_a_predict_client_cannot_read_the_admin_views(api: Api, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


def test_an_admin_only_client_has_no_history_of_its_own_to_read(
    api: Api, admin: dict[str, str]
) -> None:
    assert api.client.get("/predictions/history", headers=admin).status_code == 403


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["sometimes", "sample:0", "sample:1.5", "sample:nan", "sample:"])
def test_an_unknown_log_mode_stops_start_up(value: str) -> None:
    with pytest.raises(ConfigurationError, match="PREDICTION_LOG"):
        load_settings(_env_file=None, prediction_log=value)


@pytest.fixture
def log_off_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, prediction_log="off")


def test_with_the_log_off_nothing_is_recorded(
    log_off_settings: Settings, tiny_model: TrainedModel
) -> None:
    with open_api(log_off_settings, tiny_model) as api:
        assert api.post("/predict/", json=SUSU).status_code == 200
        assert api.direct.runtime.prediction_log.flush()
        assert api.get("/predictions/history").json()["items"] == []


def test_sampling_keeps_that_share_of_requests() -> None:
    draws = iter([0.05, 0.5, 0.09, 0.95])
    log = PredictionLog(
        create_engine("sqlite://"),
        setup_metrics(),
        fraction=0.1,
        max_rows=1000,
        sample=lambda: next(draws),
    )
    assert [log.wants() for _ in range(4)] == [True, False, True, False]


# --- outages, shutdown, hostile names -------------------------------------------------------


@pytest.fixture
def writer_database(tmp_path: Path) -> Iterator[str]:
    """A migrated database of the pass's backend for a writer made by hand."""
    url = database_url_for(tmp_path)
    open_database(url, migrate=True).dispose()
    yield url


def _count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).select_from(PredictionLogEntry)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_a_stopped_database_drops_rows_past_the_queue_and_counts_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on port 1: every write fails as it does while PostgreSQL is down.
    engine = create_engine("postgresql+psycopg://garoupa@127.0.0.1:1/none", pool_pre_ping=True)
    metrics = setup_metrics()
    log = PredictionLog(engine, metrics, fraction=1.0, max_rows=1000, retry_seconds=0.05)

    full_before = counter("garoupa_prediction_log_dropped_total", reason="queue_full")
    shutdown_before = counter("garoupa_prediction_log_dropped_total", reason="shutdown")
    try:
        with caplog.at_level(logging.WARNING, logger="app.services.prediction_log"):
            # Queued before the writer starts, so the bound is met exactly.
            for _ in range(3):
                log.record("svc", "v1.0.0", [ROW] * 500, None, 1.0)
            log.start()
            assert not log.flush(timeout=0.5)
            log.close(timeout=30)
    finally:
        engine.dispose()
    dropped_full = (
        counter("garoupa_prediction_log_dropped_total", reason="queue_full") - full_before
    )
    dropped_shutdown = (
        counter("garoupa_prediction_log_dropped_total", reason="shutdown") - shutdown_before
    )
    assert dropped_full == 500
    # Still down at exit: what the writer held is counted too, never silently lost.
    assert dropped_shutdown == 1000
    messages = [r.getMessage() for r in caplog.records]
    assert "prediction log dropped rows" in messages
    assert "prediction log write failed" in messages


def test_rows_wait_out_an_outage_and_are_written_when_the_database_returns(
    tmp_path: Path,
) -> None:
    # SQLite file without the table yet: writes fail until the schema appears.
    url = f"sqlite:///{tmp_path / 'late.db'}"
    engine = create_engine(url)
    log = PredictionLog(engine, setup_metrics(), fraction=1.0, max_rows=10_000, retry_seconds=0.05)
    log.start()
    try:
        log.record("svc", "v1.0.0", [ROW] * 300, "r1", 1.0)
        assert not log.flush(timeout=0.5)
        open_database(url, migrate=True).dispose()
        log.record("svc", "v1.0.0", [ROW] * 200, "r2", 1.0)
        assert log.flush(timeout=30)
    finally:
        log.close()
        engine.dispose()
    assert _count(url) == 500


def test_shutdown_flushes_what_is_queued(writer_database: str) -> None:
    engine = create_engine(writer_database)
    # A flush period longer than the test: only close() can have written the rows.
    log = PredictionLog(engine, setup_metrics(), fraction=1.0, max_rows=10_000, flush_seconds=3600)
    log.start()
    log.record("svc", "v1.0.0", [ROW] * 10, None, 1.0)
    log.close()
    engine.dispose()
    assert _count(writer_database) == 10


def test_a_name_the_database_cannot_store_does_not_stall_the_log(api: Api) -> None:
    # NUL is valid JSON text but PostgreSQL refuses it in a text column; written as
    # it came, it would fail its whole batch and every later one.
    hostile = api.post("/predict/", json={"product_name": "susu\u0000 ultra"})
    assert hostile.status_code == 200
    api.post("/predict/", json={"product_name": "susu bendera"})
    assert names_of(logged(api)) == ["susu bendera", "susu\ufffd ultra"]


def test_retention_purges_old_rows_in_bounded_batches(writer_database: str) -> None:
    engine = create_engine(writer_database)
    now = datetime.now(UTC)
    rows = [
        (now - timedelta(days=age), "svc", "v1.0.0", f"row {age}", "Susu", 0.5, False, True)
        + (None, 0, 1.0)
        for age in (0, 1, 29, 31, 40, 50, 60, 70, 365)
    ]
    with engine.begin() as connection:
        crud.insert_rows(connection, rows)
    log = PredictionLog(engine, setup_metrics(), fraction=1.0, max_rows=1000)
    assert log.purge_expired(30, chunk_rows=2) == 6
    with engine.connect() as connection:
        left = connection.execute(select(PredictionLogEntry.product_name)).scalars().all()
    engine.dispose()
    assert sorted(left) == ["row 0", "row 1", "row 29"]


def test_only_one_process_purges_at_a_time(writer_database: str) -> None:
    first = create_engine(writer_database)
    second = create_engine(writer_database)
    try:
        with _purge_lock(first) as got_first, _purge_lock(second) as got_second:
            assert got_first and not got_second
        with _purge_lock(second) as again:
            assert again
    finally:
        first.dispose()
        second.dispose()


def test_history_answers_while_the_writer_is_busy(api: Api) -> None:
    """Reads poll, honouring 429s, until a large batch lands: no request waits on the log."""
    api.post("/predict/batch", json={"product_names": [f"susu {i}" for i in range(1000)]})
    body = poll_json(
        lambda: api.get("/predictions/stats"),
        lambda stats: stats["total"] == 1000,
        timeout=60,
        what="the batch in the log",
    )
    assert body["per_day"][0]["count"] == 1000


# --- daily sums -----------------------------------------------------------------------------


def _spread_rows(start: datetime) -> list[tuple[Any, ...]]:
    """Rows over four UTC days for two clients, in the writer's queue form."""
    rows = []
    for hour in range(0, 4 * 24, 5):
        instant = (start + timedelta(hours=hour, minutes=hour % 60)).timestamp()
        for item, (category, score) in enumerate((("Susu", 0.9), ("Teh", 0.4), ("Susu", 0.7))):
            client = "svc" if hour % 2 else "other"
            rows.append(
                (instant, client, f"v1.0.{hour % 2}", f"name {hour}/{item}", category, score)
                + (score < 0.5, hour % 3 != 0, None, item, 1.0)
            )
    return rows


def test_statistics_from_daily_sums_equal_counting_the_rows(writer_database: str) -> None:
    engine = create_engine(writer_database)
    start = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    rows = _spread_rows(start)
    log = PredictionLog(engine, setup_metrics(), fraction=1.0, max_rows=1000)
    # Two batches that share days and keys: the second adds to the first's sums.
    log.write_batch(rows[: len(rows) // 2])
    log.write_batch(rows[len(rows) // 2 :])
    history = PredictionHistory(session := Session(engine), sessionmaker(engine))
    try:
        ranges = [
            (start, start + timedelta(days=4)),  # whole days only
            (start + timedelta(hours=7, minutes=3), start + timedelta(days=3, hours=2)),
            (start + timedelta(hours=1), start + timedelta(hours=20)),  # inside one day
            (start + timedelta(days=1), start + timedelta(days=2, hours=13)),
        ]
        for since, until in ranges:
            for client in (None, "svc"):
                for review in (None, True):
                    where = crud.LogFilter(
                        client_id=client, since=since, until=until, needs_review=review
                    )
                    expected = [
                        r
                        for r in rows
                        if since.timestamp() <= r[0] < until.timestamp()
                        and (client is None or r[1] == client)
                        and (review is None or r[6] == review)
                    ]
                    stats = history.stats(where)
                    assert stats.total == len(expected), (since, until, client, review)
                    by_category = {c.category: c.count for c in stats.per_category}
                    assert by_category == _counts(r[4] for r in expected)
                    if client is None and review is None:
                        # The admin's overview groups by client in the same pass.
                        overview = history.overview(where)
                        assert overview.predictions == stats
                        by_client = {c.client_id: c.count for c in overview.per_client}
                        assert by_client == _counts(r[1] for r in expected)
                    by_day = {d.date.isoformat(): d.count for d in stats.per_day}
                    assert by_day == _counts(
                        datetime.fromtimestamp(r[0], UTC).date().isoformat() for r in expected
                    )
                    if expected:
                        mean = sum(r[5] for r in expected) / len(expected)
                        assert stats.mean_score == pytest.approx(mean, abs=1e-6)
                        out = sum(1 for r in expected if not r[7]) / len(expected)
                        assert stats.out_of_scope_rate == pytest.approx(out, abs=1e-6)
    finally:
        session.close()
        engine.dispose()


def test_filtered_history_pages_across_days_find_every_matching_row(
    writer_database: str,
) -> None:
    # A filtered page reads only the days the daily sums show matches on: paging
    # through it must still find every matching row, in order, across day edges.
    engine = create_engine(writer_database)
    start = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    rows = _spread_rows(start)
    rows.append((start.timestamp() + 86_400 * 3 + 5, "svc", "v0.9.0", "old", "Kopi", 0.3))
    rows[-1] += (True, False, None, 0, 1.0)
    PredictionLog(engine, setup_metrics(), fraction=1.0, max_rows=1000).write_batch(rows)
    # Ids follow the batch's order, and rows sharing an instant come newest id first.
    newest_first = [r for _, r in sorted(enumerate(rows), key=lambda p: (p[1][0], p[0]))][::-1]
    history = PredictionHistory(session := Session(engine), sessionmaker(engine))
    cases = [
        {"category": "Teh"},
        {"model_version": "v0.9.0"},
        {"model_version": "v1.0.1", "needs_review": True},
        {"category": "Kopi", "since": start + timedelta(days=3, seconds=6)},
        {"category": "Susu", "until": start + timedelta(days=2, hours=3)},
        {"category": "Nothing"},
    ]
    try:
        for client in ("svc", None):
            for case in cases:
                where = crud.LogFilter(client_id=client, **case)
                expected = [
                    r[3]
                    for r in newest_first
                    if (client is None or r[1] == client)
                    and r[4] == case.get("category", r[4])
                    and r[2] == case.get("model_version", r[2])
                    and r[6] == case.get("needs_review", r[6])
                    and r[0] >= case.get("since", start).timestamp()
                    and r[0] < case.get("until", start + timedelta(days=5)).timestamp()
                ]
                seen: list[str] = []
                cursor = None
                for _ in range(len(expected) + 1):
                    page = history.page(where, limit=4, cursor=cursor)
                    seen += [item.product_name for item in page.items]
                    cursor = page.next_cursor
                    if cursor is None:
                        break
                assert seen == expected, (client, case)
    finally:
        session.close()
        engine.dispose()


def _counts(values: Iterator[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def test_retention_also_purges_whole_days_of_sums(writer_database: str) -> None:
    engine = create_engine(writer_database)
    log = PredictionLog(engine, setup_metrics(), fraction=1.0, max_rows=1000)
    old = (datetime.now(UTC) - timedelta(days=45)).timestamp()
    new = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    log.write_batch(
        [(t, "svc", "v1", "n", "Susu", 0.5, False, True, None, 0, 1.0) for t in (old, new)]
    )
    assert log.purge_expired(30) == 1
    with engine.connect() as connection:
        days = connection.execute(select(PredictionDaily.day)).scalars().all()
    engine.dispose()
    assert days == [datetime.fromtimestamp(new, UTC).date()]
