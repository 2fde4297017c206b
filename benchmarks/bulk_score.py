"""Bulk scoring end to end: `python -m app.cli score` on a generated catalogue, shipped model.

    .venv/bin/python benchmarks/bulk_score.py                  # 1,000,000 rows
    .venv/bin/python benchmarks/bulk_score.py --rows 100000    # a quick look

Trains the model `make run` trains (the shipped data/products.csv) into a
temporary database and model folder, writes a CSV of `--rows` names cycling
through `--distinct` distinct names from scripts/generate_products.py (another
seed than the shipped data's, so most names are new to the model), then runs the
CLI in a fresh process as a user would: settings from the environment, the active
version loaded from the registry, the output written atomically. Reports the
process's wall time, the scoring rate the CLI measured, its CPU time and its peak
RSS (getrusage of that one child, from os.wait4). Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.config import environment_without_settings  # noqa: E402
from app.db.database import open_database  # noqa: E402
from app.ml.dataset import SHIPPED_DATASET, read_csv  # noqa: E402
from app.ml.training import fit_model  # noqa: E402
from app.services.models import ModelRegistry  # noqa: E402
from scripts.generate_products import generate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The shipped data is generated with seed 42; names of another seed are unseen ones.
NAME_SEED = 7


def install_shipped_model(database_url: str, model_dir: Path) -> str:
    """Train on the shipped data and activate the version, as train.py would."""
    trained = fit_model(read_csv(SHIPPED_DATASET))
    with (
        open_database(database_url, migrate=True) as database,
        database.sessions() as session,
    ):
        return ModelRegistry(session, model_dir).save(trained, activate=True).version


def write_names(path: Path, rows: int, distinct: int) -> None:
    """A `product_name` CSV of `rows` names, cycling through `distinct` generated ones."""
    names = [row.product_name for row in generate(distinct, NAME_SEED)[0]]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["product_name"])
        for start in range(0, rows, len(names)):
            writer.writerows([name] for name in names[: rows - start])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the input file")
    parser.add_argument(
        "--distinct",
        type=int,
        default=100_000,
        help="distinct names the rows cycle through (default: %(default)s)",
    )
    parser.add_argument(
        "--chunk-rows", type=int, default=4096, help="the CLI's --chunk-rows (default: 4096)"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bulk-score-") as folder:
        tmp = Path(folder)
        database_url = f"sqlite:///{tmp / 'bench.db'}"
        model_dir = tmp / "models"
        started = time.perf_counter()
        version = install_shipped_model(database_url, model_dir)
        print(f"trained {version} on the shipped data in {time.perf_counter() - started:.1f} s")

        source, destination = tmp / "names.csv", tmp / "scored.csv"
        started = time.perf_counter()
        write_names(source, args.rows, min(args.distinct, args.rows))
        print(
            f"wrote {args.rows:,} names ({source.stat().st_size / 1e6:.1f} MB) "
            f"in {time.perf_counter() - started:.1f} s"
        )

        (tmp / "metrics").mkdir()
        env = {
            **environment_without_settings(),
            "PYTHONPATH": str(REPO),
            "ENVIRONMENT": "development",
            "DATABASE_URL": database_url,
            "MODEL_DIR": str(model_dir),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
        }
        command = [sys.executable, "-m", "app.cli", "score", str(source), str(destination)]
        command += ["--chunk-rows", str(args.chunk_rows)]
        stdout, stderr = tmp / "stdout.txt", tmp / "stderr.txt"
        with stdout.open("w") as out, stderr.open("w") as err:
            started = time.perf_counter()
            child = subprocess.Popen(command, cwd=tmp, env=env, stdout=out, stderr=err)
            # wait4, not Popen.wait: it also returns that one child's resource usage.
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            print(f"the CLI failed ({child.returncode}): {stderr.read_text()}", file=sys.stderr)
            return 1
        output_rows = sum(1 for _ in destination.open(encoding="utf-8")) - 1
        cpu = usage.ru_utime + usage.ru_stime
        print(stdout.read_text().strip())
        print(f"rows in / out:           {args.rows:,} / {output_rows:,}")
        print(f"process wall time:       {wall:.1f} s (start-up and model load included)")
        print(f"end to end:              {args.rows / wall:,.0f} rows/s")
        print(f"CPU time:                {cpu:.1f} s ({cpu / wall:.2f} cores on average)")
        # Linux reports ru_maxrss in KiB.
        print(f"peak RSS:                {usage.ru_maxrss / 1024:.0f} MiB")
        print(f"output:                  {destination.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
