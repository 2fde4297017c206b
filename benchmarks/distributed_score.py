"""Scoring a partitioned catalogue on a Dask LocalCluster of 1, then 2 workers, shipped model.

    .venv/bin/python benchmarks/distributed_score.py                   # 1,000,000 names
    .venv/bin/python benchmarks/distributed_score.py --rows 100000     # a quick look

Trains the model `make run` trains into a temporary database and model folder
(`benchmarks/bulk_score.py`'s helper), writes `--rows` names cycling through
`--distinct` generated ones (the bulk benchmark's names: another seed than the
shipped data's) into `--partitions` CSV files, then for each worker count starts
a `LocalCluster` of one-thread worker processes and runs `score_partitions` as
`python -m app.cli score-dask` does. Reports per run the cluster's start, the
scorer's broadcast, the wall time of the scoring, names/s, names/s per worker,
and the overhead: wall time x workers minus the seconds the tasks spent scoring
(what the engine costs: scheduling, the broadcast, idle workers at the end),
and the CPU seconds the workers and the driver (which runs the local scheduler)
used: names per CPU-second is the per-core rate even on a machine others load.
Run it on an idle machine; it prints the load average before and after.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.config import Settings  # noqa: E402
from app.services.distributed_scoring import (  # noqa: E402
    PartitionScorer,
    cluster_client,
    load_partition_scorer,
    partition_files,
    score_partitions,
)
from benchmarks.bulk_score import NAME_SEED, install_shipped_model  # noqa: E402
from scripts.generate_products import generate  # noqa: E402


def write_partitions(folder: Path, rows: int, distinct: int, partitions: int) -> None:
    """`partitions` CSV files holding `rows` names between them, cycling through `distinct`."""
    names = [row.product_name for row in generate(distinct, NAME_SEED)[0]]
    stream = itertools.islice(itertools.cycle(names), rows)
    size, extra = divmod(rows, partitions)
    for index in range(partitions):
        count = size + (1 if index < extra else 0)
        with (folder / f"part-{index:05d}.csv").open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["product_name"])
            writer.writerows([name] for name in itertools.islice(stream, count))


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usage() -> tuple[float, float]:
    """This process's CPU seconds so far and peak resident MiB (run on each worker too)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    # Linux reports ru_maxrss in KiB.
    return own.ru_utime + own.ru_stime, own.ru_maxrss / 1024


def run(scorer: PartitionScorer, source: Path, destination: Path, workers: int) -> None:
    """One scoring of every partition on a fresh local cluster of `workers` processes."""
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir()
    sources = partition_files(source)
    started = time.perf_counter()
    with cluster_client(workers=workers) as client:
        client.wait_for_workers(workers)
        up = time.perf_counter() - started
        started = time.perf_counter()
        # The broadcast alone, timed apart; score_partitions does its own.
        shipped = client.scatter(scorer, broadcast=True, hash=False)
        shipped.result()
        broadcast = time.perf_counter() - started
        client.cancel([shipped])
        before = client.run(usage)
        driver = usage()[0]
        started = time.perf_counter()
        results = score_partitions(client, scorer, sources, destination)
        wall = time.perf_counter() - started
        # The driver process also runs the local scheduler: its CPU is the engine's.
        driver = usage()[0] - driver
        after = client.run(usage)
    cpu = sum(after[w][0] - before[w][0] for w in after)
    peaks = [after[w][1] for w in after]
    rows = sum(r.summary.rows for r in results)
    busy = sum(r.summary.seconds for r in results)
    overhead = wall * workers - busy
    print(f"--- {workers} worker{'s' if workers > 1 else ''} ---")
    print(f"cluster start:           {up:.1f} s")
    print(f"scorer broadcast:        {broadcast:.2f} s")
    print(f"scoring wall time:       {wall:.1f} s for {rows:,} names in {len(results)} files")
    print(f"throughput:              {rows / wall:,.0f} names/s")
    print(f"per worker (core):       {rows / wall / workers:,.0f} names/s")
    print(f"inside the tasks:        {rows / busy:,.0f} names/s per task-second")
    # CPU time, unlike wall time, is not stretched by other processes on the machine.
    print(f"worker CPU time:         {cpu:.1f} s: {rows / cpu:,.0f} names per CPU-second")
    print(f"driver + scheduler CPU:  {driver:.1f} s")
    print(f"worker peak RSS:         {', '.join(f'{m:.0f}' for m in peaks)} MiB")
    print(
        f"engine overhead:         {overhead:.1f} worker-seconds "
        f"({overhead / (wall * workers):.1%} of the run)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="names in all (1,000,000)")
    parser.add_argument("--distinct", type=int, default=100_000, help="distinct names (100,000)")
    parser.add_argument("--partitions", type=int, default=16, help="CSV files (default: 16)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default: 1 2)"
    )
    args = parser.parse_args(argv)

    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="distributed-score-") as folder:
        tmp = Path(folder)
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(tmp / "metrics"))
        (tmp / "metrics").mkdir()
        database_url = f"sqlite:///{tmp / 'bench.db'}"
        model_dir = tmp / "models"
        started = time.perf_counter()
        version = install_shipped_model(database_url, model_dir)
        print(f"trained {version} on the shipped data in {time.perf_counter() - started:.1f} s")
        # No developer's .env: the database and models are the ones just made.
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            environment="development",
            database_url=database_url,
            model_dir=model_dir,
        )
        scorer = load_partition_scorer(settings)

        source, destination = tmp / "catalogue", tmp / "scored"
        source.mkdir()
        started = time.perf_counter()
        write_partitions(source, args.rows, min(args.distinct, args.rows), args.partitions)
        size = sum(p.stat().st_size for p in partition_files(source))
        print(
            f"wrote {args.rows:,} names in {args.partitions} files ({size / 1e6:.1f} MB) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        for workers in args.workers:
            run(scorer, source, destination, workers)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
