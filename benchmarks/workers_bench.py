"""POST /predict/ requests/s with 1 and 2 uvicorn workers, on SQLite and on PostgreSQL.

Each cell is a fresh deployment (shipped model, one client) served by uvicorn and
loaded by wrk at 32 connections. Predictions read no database per request, so the
backend should not matter; this measures that it does not.

    python benchmarks/workers_bench.py [--duration 10] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.loadgen import load, prepare_deployment, token, uvicorn_server  # noqa: E402

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument(
        "--postgres", default=DEFAULT_POSTGRES, help="server to use (a schema is made)"
    )
    args = parser.parse_args(argv)
    print(f"wrk c=32, {args.duration} s per cell, {os.cpu_count()} cores\n")
    print("| database | workers | requests/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    admin = create_engine(args.postgres)
    for backend in ("SQLite", "PostgreSQL"):
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                extra = {"RATE_LIMIT_PREDICT": "unlimited"}
                schema = None
                if backend == "PostgreSQL":
                    schema = f"garoupa_bench_{uuid.uuid4().hex[:8]}"
                    with admin.begin() as connection:
                        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
                    extra["DATABASE_URL"] = f"{args.postgres}?options=-csearch_path%3D{schema}"
                try:
                    env = prepare_deployment(Path(tmp), extra)
                    with uvicorn_server(env, workers=workers) as base:
                        r = load(f"{base}/predict/", token(base), 32, args.duration)
                finally:
                    if schema:
                        with admin.begin() as connection:
                            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            print(
                f"| {backend} | {workers} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
                f"| {r.errors} |",
                flush=True,
            )
    admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
