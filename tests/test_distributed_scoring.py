"""Scoring a partitioned catalogue on a Dask cluster (app/services/distributed_scoring.py,
`python -m app.cli score-dask`), checked against the real API on the shipped model.

The cluster is a `LocalCluster` of two worker processes, so every object a task
uses crossed a pickle: what holds here holds for workers on other machines
running the same release.
"""

from __future__ import annotations

import csv
import io
import pickle
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from distributed import Client

from app.cli import CommandError, build_parser
from app.core.config import environment_without_settings
from app.ml.training import TrainedModel
from app.services.bulk_scoring import OUTPUT_COLUMNS, BulkScorer
from app.services.distributed_scoring import (
    PartitionScorer,
    WorkerMismatch,
    load_partition_scorer,
    output_path,
    partition_files,
    score_partitions,
)
from app.services.prediction_history import neutralised
from tests.support import (
    REPO_ROOT,
    SHIPPED_CSV,
    TINY_CSV,
    Api,
    make_settings,
    open_api,
    predict_batch,
)
from tests.support.cluster import CLUSTER_TIMEOUT, local_cluster

# Names /predict/batch accepts, some awkward: padding, full-width forms, unknown
# words, spreadsheet formula starts, a comma and a quote.
AWKWARD = [
    "  indomie goreng 85g  ",
    "ＳＵＳＵ ＵＬＴＲＡ ＣＯＫＬＡＴ 250ml",
    "qwxz vvkj plorft",
    '=HYPERLINK("http://example.com/x","klik")',
    "-20% rinso anti noda",
    'kecap "bango", manis 220ml',
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Client]:
    """Two worker processes of one thread each, shut down after the module."""
    with (
        local_cluster() as local,
        Client(local, timeout=CLUSTER_TIMEOUT, set_as_default=False) as client,
    ):
        client.wait_for_workers(2, timeout=120)
        yield client


@pytest.fixture
def shipped_api(tmp_path: Path, shipped_model: TrainedModel) -> Iterator[Api]:
    """The app serving the model trained on the shipped data, as `make run` trains it."""
    with open_api(make_settings(tmp_path), shipped_model) as opened:
        yield opened


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """An input and an output folder, apart from the test's database."""
    source, destination = tmp_path / "catalogue", tmp_path / "scored"
    source.mkdir()
    destination.mkdir()
    return source, destination


def _names(path: Path, start: int, stop: int) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [row["product_name"] for row in csv.DictReader(handle)][start:stop]


def _write(path: Path, rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode("utf-8"))


def _catalogue(folder: Path) -> list[list[str]]:
    """Three partitions of unequal size, with and without a header; their names, in order."""
    parts = [
        _names(TINY_CSV, 0, 60) + AWKWARD,
        _names(SHIPPED_CSV, 0, 250),
        _names(SHIPPED_CSV, 250, 290) + AWKWARD[::-1],
    ]
    _write(folder / "part-000.csv", [["product_name"], *([name] for name in parts[0])])
    _write(folder / "part-001.csv", [[name] for name in parts[1]])
    _write(folder / "part-002.csv", [["sku", "product_name"], *([""] + [n] for n in parts[2])])
    return parts


def _read(path: Path) -> list[dict[str, str]]:
    text = path.read_bytes().decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    assert next(reader) == list(OUTPUT_COLUMNS)
    return [dict(zip(OUTPUT_COLUMNS, row, strict=True)) for row in reader]


def _score_dask(api: Api, work: Path, scheduler: str) -> subprocess.CompletedProcess[str]:
    settings = api.settings
    metrics = work / "metrics"
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
        [sys.executable, "-m", "app.cli", "score-dask", "catalogue", "scored"]
        + ["--scheduler", scheduler],
        # Away from the repository: no developer's .env is read.
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


# --- equal to the API ---------------------------------------------------------------------------


def test_partitions_scored_on_a_cluster_equal_predict_batch_in_order(
    cluster: Client, shipped_api: Api, folders: tuple[Path, Path]
) -> None:
    source, destination = folders
    parts = _catalogue(source)
    scorer = load_partition_scorer(shipped_api.settings)

    results = score_partitions(cluster, scorer, partition_files(source), destination)

    assert [r.destination.name for r in results] == [
        "part-000.scored.csv",
        "part-001.scored.csv",
        "part-002.scored.csv",
    ]
    assert [r.summary.rows for r in results] == [len(names) for names in parts]
    for result, names in zip(results, parts, strict=True):
        rows = _read(result.destination)
        items = predict_batch(shipped_api, names)
        assert len(rows) == len(items)
        for number, (row, item) in enumerate(zip(rows, items, strict=True), start=1):
            assert row["row"] == str(number)
            assert row["error"] == ""
            assert row["product_name"] == neutralised(item["product_name"])
            assert row["predicted_category"] == neutralised(item["predicted_category"])
            # Exactly: the same arrays and arithmetic as the route, in another process.
            assert float(row["prediction_score"]) == item["prediction_score"], row
            assert row["needs_review"] == str(item["needs_review"]).lower()
            assert row["in_scope"] == str(item["in_scope"]).lower()
    everything = [row for result in results for row in _read(result.destination)]
    assert any(row["in_scope"] == "false" for row in everything)
    assert any(row["needs_review"] == "true" for row in everything)


def test_runners_up_equal_the_top_3_of_predict(
    cluster: Client, shipped_api: Api, folders: tuple[Path, Path]
) -> None:
    source, destination = folders
    names = _names(SHIPPED_CSV, 1000, 1030) + AWKWARD
    _write(source / "names.csv", [[name] for name in names])
    scorer = load_partition_scorer(shipped_api.settings)

    (result,) = score_partitions(cluster, scorer, [source / "names.csv"], destination)

    for name, row in zip(names, _read(result.destination), strict=True):
        response = shipped_api.post("/predict/", json={"product_name": name, "top_k": 3})
        top = response.json()["top_k"]
        for rank in (1, 2, 3):
            column = "predicted_category" if rank == 1 else f"top{rank}_category"
            assert row[column] == neutralised(top[rank - 1]["category"])
        for rank in (2, 3):
            # One name alone is scored on the single-name path: equal to the last bits.
            assert float(row[f"top{rank}_score"]) == pytest.approx(
                top[rank - 1]["score"], abs=1e-12
            )


def test_each_partition_equals_the_bulk_scorer_bad_rows_included(
    cluster: Client, shipped_api: Api, folders: tuple[Path, Path], tmp_path: Path
) -> None:
    source, destination = folders
    names = _names(SHIPPED_CSV, 500, 540)
    # An empty name, one of blanks and one too long: refused per row, as the API would.
    _write(source / "a.csv", [["product_name"], *([n] for n in names), [""], ["   "], ["x" * 301]])
    (source / "b.csv").write_bytes(b"product_name\nsusu\xff coklat\nindomie goreng\n")
    scorer = load_partition_scorer(shipped_api.settings)

    results = score_partitions(cluster, scorer, partition_files(source), destination)

    local = BulkScorer(scorer.model, scorer.review_threshold)
    for result in results:
        expected = tmp_path / f"local-{result.source.name}"
        summary = local.score_file(result.source, expected)
        assert result.destination.read_bytes() == expected.read_bytes()
        assert (result.summary.rows, result.summary.bad_rows) == (summary.rows, summary.bad_rows)
    assert [r.summary.bad_rows for r in results] == [3, 1]


# --- the object shipped to the workers -----------------------------------------------------------


def test_the_scorer_pickles_small_and_scores_the_same_after(shipped_api: Api) -> None:
    scorer = load_partition_scorer(shipped_api.settings)
    data = pickle.dumps(scorer, protocol=pickle.HIGHEST_PROTOCOL)
    names = _names(SHIPPED_CSV, 0, 200) + AWKWARD

    copy: PartitionScorer = pickle.loads(data)

    # The shipped model's stored scorer is about 8.5 MB of weights; no pipeline travels.
    assert len(data) < 32 * 2**20
    assert copy.model.pipeline is None
    assert copy.score_names(names) == scorer.score_names(names)


def test_a_worker_scoring_differently_from_the_driver_is_refused(
    cluster: Client, shipped_api: Api, folders: tuple[Path, Path]
) -> None:
    source, destination = folders
    _write(source / "names.csv", [[name] for name in AWKWARD])
    scorer = load_partition_scorer(shipped_api.settings)
    # As if the driver's code had scored the first probe name 0.01 higher.
    first = scorer.probe[0]
    altered = (*first[:3], float(first[3]) + 0.01, *first[4:])
    mismatched = replace(scorer, probe=(altered, *scorer.probe[1:]))

    with pytest.raises(WorkerMismatch, match="same Garoupa release"):
        score_partitions(cluster, mismatched, [source / "names.csv"], destination)
    assert list(destination.iterdir()) == []


# --- the command line ---------------------------------------------------------------------------


def test_cli_scores_a_catalogue_folder_on_an_existing_cluster(
    cluster: Client, shipped_api: Api, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    (work / "catalogue").mkdir(parents=True)
    (work / "scored").mkdir()
    parts = _catalogue(work / "catalogue")

    # The command is a client of the module's cluster, as of a scheduler on another host.
    result = _score_dask(shipped_api, work, cluster.scheduler.address)

    assert result.returncode == 0, result.stderr
    rows = sum(len(names) for names in parts)
    assert f"Scored {rows:,} rows (0 bad) in 3 files with v1.0.0 on 2 workers" in result.stdout
    scorer = load_partition_scorer(shipped_api.settings)
    for source, names in zip(partition_files(work / "catalogue"), parts, strict=True):
        scored = [list(row.values()) for row in _read(output_path(work / "scored", source))]
        assert scored == [[str(cell) for cell in row] for row in scorer.score_names(names)]


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("same", "the output folder must not be the input folder"),
        ("empty", "no .csv files in"),
        ("missing", "input folder not found"),
    ],
)
def test_cli_refuses_a_catalogue_it_cannot_score(tmp_path: Path, layout: str, message: str) -> None:
    source = tmp_path / "catalogue"
    if layout != "missing":
        source.mkdir()
    if layout == "same":
        _write(source / "a.csv", [["susu"]])
    destination = source if layout == "same" else tmp_path

    args = build_parser().parse_args(["score-dask", str(source), str(destination)])

    # Before any setting is read or any cluster started.
    with pytest.raises(CommandError, match=message):
        args.handler(args)
