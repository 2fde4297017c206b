"""Bulk scoring of CSV files (app/services/bulk_scoring.py, `python -m app.cli score`)
against the real API, the real model and a real database."""

from __future__ import annotations

import argparse
import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import AfterValidator, StringConstraints, TypeAdapter, ValidationError

from app.cli import build_parser
from app.core.config import Settings, environment_without_settings
from app.db.database import open_database
from app.ml.training import TrainedModel
from app.schemas.prediction import ProductName, _bounded_name
from app.services.bulk_scoring import (
    OUTPUT_COLUMNS,
    BulkLimits,
    BulkProgress,
    BulkScorer,
    BulkSummary,
    InputRow,
    TooManyRows,
    WorkerLost,
    _checked_names,
)
from app.services.prediction import Predictions, ServingModel, review_threshold
from app.services.prediction_history import neutralised
from tests.support import (
    REPO_ROOT,
    SHIPPED_CSV,
    TINY_CSV,
    Api,
    child_pids,
    install_model,
    predict_batch,
)

HYPERLINK = '=HYPERLINK("http://example.com/x","klik")'
# Names /predict/batch accepts, some awkward: padding, case, full-width forms,
# words the model never saw, spreadsheet formula starts, a comma and a quote.
AWKWARD = [
    "  indomie goreng 85g  ",
    "ＳＵＳＵ ＵＬＴＲＡ ＣＯＫＬＡＴ 250ml",
    "qwxz vvkj plorft",
    HYPERLINK,
    "-20% rinso anti noda",
    "+62 kopi kapal api",
    "@chitato sapi panggang",
    'kecap "bango", manis 220ml',
    "sabun\tcuci piring",
]


def _names(path: Path, limit: int) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [row["product_name"] for row in csv.DictReader(handle)][:limit]


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _served(api: Api) -> tuple[ServingModel, float]:
    """The model the app serves and the review threshold /predict/batch applies."""
    model = api.direct.runtime.predictions.require_model()
    threshold = review_threshold(
        None, api.settings, Predictions(model.version, [], model.review_threshold)
    )
    return model, threshold


def _score(
    api: Api, data: bytes, limits: BulkLimits | None = None
) -> tuple[list[dict[str, str]], BulkSummary]:
    model, threshold = _served(api)
    out = io.BytesIO()
    summary = BulkScorer(model, threshold, limits).score(io.BytesIO(data), out)
    return _read_output(out.getvalue()), summary


def _read_output(data: bytes) -> list[dict[str, str]]:
    # RFC 4180: every record ends in CRLF, and the bytes are strict UTF-8.
    text = data.decode("utf-8")
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    reader = csv.reader(io.StringIO(text, newline=""))
    assert next(reader) == list(OUTPUT_COLUMNS)
    return [dict(zip(OUTPUT_COLUMNS, row, strict=True)) for row in reader]


def _assert_same_as_batch(rows: list[dict[str, str]], items: list[dict[str, Any]]) -> None:
    assert len(rows) == len(items)
    for number, (row, item) in enumerate(zip(rows, items, strict=True), start=1):
        assert row["row"] == str(number)
        assert row["error"] == ""
        assert row["product_name"] == neutralised(item["product_name"])
        assert row["predicted_category"] == neutralised(item["predicted_category"])
        # Exactly: the same model object and the same arithmetic as the route.
        assert float(row["prediction_score"]) == item["prediction_score"], row
        assert row["needs_review"] == str(item["needs_review"]).lower()
        assert row["in_scope"] == str(item["in_scope"]).lower()


# --- equal to the API ---------------------------------------------------------------------------


def test_results_equal_predict_batch_for_the_same_names_in_order(api: Api) -> None:
    names = _names(TINY_CSV, 60) + _names(SHIPPED_CSV, 400) + AWKWARD
    data = _csv([["product_name"], *([name] for name in names)])
    # Small chunks, so that chunk boundaries fall all over the file.
    rows, summary = _score(api, data, BulkLimits(chunk_rows=37))
    _assert_same_as_batch(rows, predict_batch(api, names))
    assert (summary.rows, summary.bad_rows) == (len(names), 0)
    assert summary.model_version == "v1.0.0"
    assert any(row["in_scope"] == "false" for row in rows)
    assert any(row["needs_review"] == "true" for row in rows)


def test_runners_up_equal_the_top_3_of_predict(api: Api) -> None:
    names = _names(TINY_CSV, 8) + AWKWARD
    rows, _ = _score(api, _csv([[name] for name in names]))
    for name, row in zip(names, rows, strict=True):
        response = api.post("/predict/", json={"product_name": name, "top_k": 3})
        top = response.json()["top_k"]
        assert row["predicted_category"] == top[0]["category"]
        for rank in (2, 3):
            assert row[f"top{rank}_category"] == top[rank - 1]["category"]
            # One name alone is scored on the single-name path: equal to the last bits.
            assert float(row[f"top{rank}_score"]) == pytest.approx(
                top[rank - 1]["score"], abs=1e-12
            )
        assert float(row["top2_score"]) <= float(row["prediction_score"])


# --- reading the input --------------------------------------------------------------------------

FIRST, SECOND = "susu ultra coklat 250ml", "indomie goreng 85g"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(f"product_name\n{FIRST}\n{SECOND}\n".encode(), id="header"),
        pytest.param(f"{FIRST}\n{SECOND}".encode(), id="no-header-no-final-line-end"),
        pytest.param(f"\ufeffProduct_Name\r\n{FIRST}\r\n{SECOND}\r\n".encode(), id="bom-header"),
        pytest.param(f"\ufeff{FIRST}\n{SECOND}\n".encode(), id="bom-no-header"),
        pytest.param(
            f"sku,PRODUCT_NAME,price\n1,{FIRST},5\n\n2,{SECOND},6\n".encode(),
            id="named-column-and-a-blank-line",
        ),
        pytest.param(f'"{FIRST}",a\r"{SECOND}",b\r'.encode(), id="quoted-cr-line-ends"),
    ],
)
def test_header_or_first_column_bom_and_line_ends(api: Api, data: bytes) -> None:
    rows, summary = _score(api, data)
    _assert_same_as_batch(rows, predict_batch(api, [FIRST, SECOND]))
    assert summary.rows == 2


def test_a_first_row_without_product_name_is_data(api: Api) -> None:
    rows, _ = _score(api, b"name,category\nindomie goreng,Mie Instan\n")
    assert [row["product_name"] for row in rows] == ["name", "indomie goreng"]
    assert [row["row"] for row in rows] == ["1", "2"]


# --- bad rows -----------------------------------------------------------------------------------


def test_bad_rows_are_reported_and_counted_without_failing_the_run(api: Api) -> None:
    limits = BulkLimits(max_fields=4, max_row_chars=400)
    lines = [
        b"product_name,category",
        FIRST.encode(),
        b'""',
        b"   ",
        b"x" * 301,
        "\ufdfa".encode() * 20,
        b"!!! ???",
        b"susu \xff\xfe coklat 250ml",
        SECOND.encode(),
        b"kopi,a,b,c,d",
        # Exactly the row bound with its CR: the cut falls between CR and LF.
        b"y" * 400,
        b"z" * 5000,
        HYPERLINK.replace('"', '""').join(['"', '"']).encode(),
        b"\xe4\xbd",
        FIRST.encode(),
    ]
    rows, summary = _score(api, b"\r\n".join(lines) + b"\r\n", limits)
    errors = [row["error"] for row in rows]
    assert errors == [
        "",
        "empty name",
        "empty name",
        "String should have at most 300 characters",
        "String should have at most 300 characters after Unicode NFKC normalisation",
        "must contain at least one letter or digit",
        "name is not valid UTF-8",
        "",
        "row has 5 fields, more than 4",
        "row longer than 400 characters",
        "row longer than 400 characters",
        "",
        "name is not valid UTF-8",
        "",
    ]
    assert [row["row"] for row in rows] == [str(n) for n in range(1, len(lines))]
    assert (summary.rows, summary.bad_rows) == (14, 10)
    for row in rows:
        if row["error"]:
            assert row["predicted_category"] == row["prediction_score"] == row["in_scope"] == ""
            assert row["top2_category"] == row["top3_score"] == ""
    # The row after a bad byte, and every good row, is scored as the API scores it.
    good = [row for row in rows if not row["error"]]
    _assert_same_as_batch(
        [{**row, "row": str(n)} for n, row in enumerate(good, start=1)],
        predict_batch(api, [FIRST, SECOND, HYPERLINK, FIRST]),
    )
    assert rows[6]["product_name"] == "susu \ufffd\ufffd coklat 250ml"


# Names on the edges of ProductName's rules: NFKC expansion around the 300 cap,
# whitespace pydantic trims or keeps, nothing left once normalised, odd code points.
EDGE_NAMES = [
    "\ufdfa" * 17,
    "\ufdfa" * 16,
    "\ufdfa" * 15 + " ok",
    "y" * 299 + "\u00bd",
    "x" * 300,
    " " + "y" * 300,
    "\u3000susu\u3000",
    "\x1c susu \x1f",
    "\x1c\x1d",
    "\u200b",
    "\u200bsusu",
    "e\u0301",
    "\u0301",
    "\u00a0\u00a0",
    "susu\u0085",
    "'''",
    "__",
    "..",
    "1",
    "\u00b2",
    "\u2166",
    "\ufb01",
    "a\u0000b",
    "\U0001f600",
    "\U0001f600 kopi",
    "",
    "   ",
]


def test_names_are_checked_over_a_chunk_exactly_as_product_name_checks_each() -> None:
    rows = [InputRow(number, name) for number, name in enumerate(EDGE_NAMES + AWKWARD, 1)]
    adapter = TypeAdapter(ProductName)
    expected: list[tuple[str | None, bool]] = []
    for row in rows:
        try:
            expected.append((adapter.validate_python(row.name), True))
        except ValidationError:
            expected.append((None, False))
    checked = _checked_names(rows)
    assert [(name, error is None) for name, error in checked] == expected
    assert sum(1 for name, _ in checked if name is None) >= 8


def test_the_chunk_name_check_covers_every_rule_of_product_name() -> None:
    # _checked_names applies ProductName's own constraints, and redoes _bounded_name
    # over a chunk: a rule added to ProductName must be added there too.
    rules = get_args(ProductName)[1:]
    assert [type(rule) for rule in rules] == [StringConstraints, AfterValidator]
    assert rules[1].func is _bounded_name


def test_formula_cells_are_neutralised_as_the_export_does(api: Api) -> None:
    rows, _ = _score(api, _csv([[HYPERLINK], ["-"], ["+"], ["@x"], ["\t=1+2"]]))
    assert rows[0]["product_name"] == "'" + HYPERLINK
    assert rows[0]["predicted_category"] != ""
    # Refused names too ("-" and "+" have no letter or digit); "\t=1+2" is scored trimmed.
    assert [row["product_name"] for row in rows[1:]] == ["'-", "'+", "'@x", "'=1+2"]


def test_more_rows_than_the_bound_fail_the_run(api: Api) -> None:
    with pytest.raises(TooManyRows, match="more than 2 data rows"):
        _score(api, _csv([[FIRST]] * 3), BulkLimits(max_rows=2))
    rows, _ = _score(api, _csv([["product_name"], [FIRST], [SECOND]]), BulkLimits(max_rows=2))
    assert len(rows) == 2


# --- files and progress -------------------------------------------------------------------------


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder for the input and output files alone (the test's database is beside it)."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def test_progress_reports_rows_bad_rows_and_the_file_read(api: Api, work: Path) -> None:
    model, threshold = _served(api)
    source, destination = work / "in.csv", work / "out.csv"
    source.write_bytes(_csv([[FIRST], [""], [SECOND]] * 10))
    seen: list[BulkProgress] = []
    summary = BulkScorer(model, threshold, BulkLimits(chunk_rows=7)).score_file(
        source, destination, seen.append
    )
    assert [p.rows for p in seen] == [7, 14, 21, 28, 30]
    assert [p.bad_rows for p in seen] == [2, 5, 7, 9, 10]
    last = seen[-1]
    assert last.total_bytes == source.stat().st_size
    assert last.bytes_read == last.total_bytes
    assert last.estimated_rows == 30
    assert last.eta_seconds == 0
    assert (summary.rows, summary.bad_rows) == (30, 10)
    assert len(_read_output(destination.read_bytes())) == 30


@pytest.mark.parametrize("cores", [1, 2])
def test_a_failed_run_leaves_the_previous_output_untouched(
    api: Api, work: Path, cores: int
) -> None:
    model, threshold = _served(api)
    source, destination = work / "in.csv", work / "out.csv"
    source.write_bytes(_csv([[FIRST]] * 20))
    destination.write_text("previous results")
    scorer = BulkScorer(model, threshold, BulkLimits(max_rows=15, chunk_rows=4), cores=cores)
    with pytest.raises(TooManyRows):
        scorer.score_file(source, destination)
    assert destination.read_text() == "previous results"
    assert sorted(p.name for p in work.iterdir()) == ["in.csv", "out.csv"]


# --- several cores ------------------------------------------------------------------------------


def _mixed_csv(rows: int) -> bytes:
    """A CSV of `rows` names (the awkward ones, then shipped ones) and, among them, a
    refused row every 97: empty, too long, not UTF-8, symbols alone, past the row bound."""
    names = AWKWARD + _names(SHIPPED_CSV, rows - len(AWKWARD))
    bad = [b'""', b"x" * 301, b"susu \xff coklat", b"!!!", b"   ", b"y" * 70_000]
    lines = [b"product_name"]
    for number, name in enumerate(names):
        if number % 97 == 13:
            lines.append(bad[number // 97 % len(bad)])
        lines.append(_csv([[name]]).rstrip(b"\n"))
    return b"\r\n".join(lines) + b"\r\n"


def test_two_cores_write_the_same_bytes_as_one(api: Api, work: Path) -> None:
    model, threshold = _served(api)
    source = work / "in.csv"
    source.write_bytes(_mixed_csv(3000))
    outputs: dict[int, bytes] = {}
    summaries: dict[int, tuple[int, int]] = {}
    reports: dict[int, list[tuple[int, int]]] = {}
    for cores in (1, 2):
        seen: list[BulkProgress] = []
        # Small chunks: many of them, handed to both workers in turn.
        scorer = BulkScorer(model, threshold, BulkLimits(chunk_rows=101), cores=cores)
        summary = scorer.score_file(source, work / f"out-{cores}.csv", seen.append)
        outputs[cores] = (work / f"out-{cores}.csv").read_bytes()
        summaries[cores] = (summary.rows, summary.bad_rows)
        reports[cores] = [(p.rows, p.bad_rows) for p in seen]
        assert seen[-1].bytes_read == source.stat().st_size
    assert outputs[2] == outputs[1]
    assert summaries[2] == summaries[1] == (3000 + 31, 31)
    assert reports[2] == reports[1]
    assert _files(work) == ["in.csv", "out-1.csv", "out-2.csv"]


def test_a_worker_process_that_dies_fails_the_run_and_writes_nothing(api: Api, work: Path) -> None:
    model, threshold = _served(api)
    source, destination = work / "in.csv", work / "out.csv"
    source.write_bytes(_csv([[FIRST], [SECOND]] * 1500))
    before = child_pids(os.getpid())
    killed: list[int] = []

    def kill_a_worker(progress: BulkProgress) -> None:
        if not killed:
            killed.append(min(child_pids(os.getpid()) - before))
            os.kill(killed[0], signal.SIGKILL)

    scorer = BulkScorer(model, threshold, BulkLimits(chunk_rows=25), cores=2)
    with pytest.raises(WorkerLost, match="out of memory or killed"):
        scorer.score_file(source, destination, kill_a_worker)
    assert _files(work) == ["in.csv"]
    deadline = time.monotonic() + 60
    while child_pids(os.getpid()) - before:
        assert time.monotonic() < deadline, "a worker process outlived its run"
        time.sleep(0.05)


def test_bulk_cores_defaults_to_all_cpus_but_one_and_is_bounded() -> None:
    assert Settings(_env_file=None).bulk_cores == max(1, len(os.sched_getaffinity(0)) - 1)
    assert Settings(_env_file=None, bulk_cores=3).bulk_cores == 3
    for refused in (0, 257):
        with pytest.raises(ValueError, match="bulk_cores"):
            Settings(_env_file=None, bulk_cores=refused)


# --- the command line ---------------------------------------------------------------------------


def _cli(settings: Settings, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    metrics = work.parent / "metrics"
    metrics.mkdir(exist_ok=True)
    env = {
        **environment_without_settings(),
        "PYTHONPATH": str(REPO_ROOT),
        "ENVIRONMENT": "development",
        "DATABASE_URL": settings.database_url,
        "MODEL_DIR": str(settings.model_dir),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "score", *args],
        # Away from the repository: no developer's .env is read.
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_cli_scores_a_file_as_the_api_does(api: Api, work: Path) -> None:
    names = _names(TINY_CSV, 20) + AWKWARD
    (work / "in.csv").write_bytes(_csv([["product_name"], *([name] for name in names)]))
    # The model folder from the option, not the setting.
    settings = api.settings.model_copy(update={"model_dir": work.parent / "elsewhere"})
    result = _cli(
        settings,
        work,
        "in.csv",
        "out.csv",
        "--model-dir",
        str(api.settings.model_dir),
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = result.stdout.strip().splitlines()
    assert len(summary) == 1
    assert f"Scored {len(names)} rows (0 bad) with v1.0.0" in summary[0]
    _assert_same_as_batch(_read_output((work / "out.csv").read_bytes()), predict_batch(api, names))
    assert _files(work) == ["in.csv", "out.csv"]


def test_cli_on_two_cores_writes_what_one_core_writes(api: Api, work: Path) -> None:
    (work / "in.csv").write_bytes(_mixed_csv(2000))
    model, threshold = _served(api)
    BulkScorer(model, threshold).score_file(work / "in.csv", work / "one-core.csv")
    result = _cli(api.settings, work, "in.csv", "out.csv", "--cores", "2", "--chunk-rows", "64")
    assert result.returncode == 0, result.stderr
    assert "Scored 2,021 rows (21 bad) with v1.0.0" in result.stdout
    assert (work / "out.csv").read_bytes() == (work / "one-core.csv").read_bytes()


def test_cli_with_a_missing_input_file_exits_1_naming_it(settings: Settings, work: Path) -> None:
    result = _cli(settings, work, "absent.csv", "out.csv")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: input file not found: absent.csv"
    assert not (work / "out.csv").exists()


def test_cli_with_an_unknown_version_exits_1_and_writes_nothing(
    settings: Settings, tiny_model: TrainedModel, work: Path
) -> None:
    install_model(settings, tiny_model)
    (work / "in.csv").write_bytes(_csv([[FIRST]]))
    before = _files(work)
    result = _cli(settings, work, "in.csv", "out.csv", "--version", "v9.9.9")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: model version 'v9.9.9' does not exist"
    assert _files(work) == before


def test_cli_without_an_active_model_exits_1_saying_how_to_train(
    settings: Settings, work: Path
) -> None:
    open_database(settings.database_url, migrate=True).dispose()
    (work / "in.csv").write_bytes(_csv([[FIRST]]))
    result = _cli(settings, work, "in.csv", "out.csv")
    assert result.returncode == 1
    assert "No model is trained yet" in result.stderr
    assert "python train.py" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_failing_mid_run_leaves_no_partial_output(
    settings: Settings, tiny_model: TrainedModel, work: Path
) -> None:
    install_model(settings, tiny_model)
    (work / "in.csv").write_bytes(_csv([[FIRST]] * 50))
    (work / "out.csv").write_text("previous results")
    before = _files(work)
    result = _cli(settings, work, "in.csv", "out.csv", "--max-rows", "30", "--chunk-rows", "8")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: the file has more than 30 data rows, the most one run may score"
    )
    assert (work / "out.csv").read_text() == "previous results"
    assert _files(work) == before


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["in.csv"], id="no-output"),
        pytest.param(["in.csv", "out.csv", "--max-rows", "0"], id="max-rows-0"),
        pytest.param(["in.csv", "out.csv", "--min-score", "2"], id="min-score-2"),
    ],
)
def test_cli_usage_errors_exit_2(settings: Settings, work: Path, args: list[str]) -> None:
    result = _cli(settings, work, *args)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_every_command_and_option_has_help() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {c.dest: c.help for c in commands._choices_actions}.keys() == {"score", "score-dask"}
    assert all(c.help for c in commands._choices_actions)
    for command in commands.choices.values():
        assert command.description
        assert all(action.help for action in command._actions)


def test_help_needs_no_settings_nor_database(tmp_path: Path) -> None:
    env = {**environment_without_settings(), "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "score", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    for option in (
        "--version",
        "--model-dir",
        "--min-score",
        "--max-rows",
        "--chunk-rows",
        "--cores",
    ):
        assert option in result.stdout
    assert not list(tmp_path.iterdir())
