"""What POST /predict/ does while Redis, then PostgreSQL, is down for 10 seconds.

Starts its own Redis and PostgreSQL on spare ports (the machine's services are
left alone), serves Garoupa on them with two uvicorn workers, and sends a steady
paced load while it stops Redis for 10 s, waits, then stops PostgreSQL for 10 s.
Reports, per phase, answers by status, the slowest answer (a hang would show
here: every request has a 5 s client timeout), and how long after the backend
came back the service answered 200 again. Last, the prediction log: every 200
answer should be a row once the servers have shut down (they flush on exit);
the difference is what the outages cost the log, next to the workers' own
count of dropped rows.

    python benchmarks/outage_bench.py [--rate 100]

Needs redis-server and PostgreSQL's initdb/pg_ctl (Debian: redis-server,
postgresql), run as root (PostgreSQL runs as the `postgres` user).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.loadgen import (  # noqa: E402
    PREDICT_BODY,
    free_port,
    prepare_deployment,
    token,
    uvicorn_server,
)

PG_BIN = (
    Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
    if glob.glob("/usr/lib/postgresql/*/bin")
    else None
)


@dataclass
class Sample:
    sent_at: float
    status: int  # 0: transport error or timeout
    seconds: float


class OwnRedis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.5)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=10)


class OwnPostgres:
    def __init__(self, workdir: Path) -> None:
        assert PG_BIN is not None
        self.port = free_port()
        self.data = workdir / "pgdata"
        self.data.mkdir()
        shutil.chown(self.data, "postgres", "postgres")
        self._as_postgres(
            [str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]
        )

    def _as_postgres(self, command: list[str]) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True
        )

    def start(self) -> None:
        self._as_postgres(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.data / "log")]
            + ["-o", f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1", "start"]
        )

    def stop(self) -> None:
        self._as_postgres(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


async def paced_load(url: str, bearer: str, rate: float, seconds: float) -> list[Sample]:
    headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
    samples: list[Sample] = []
    started = time.monotonic()

    async def one(client: httpx.AsyncClient, at: float) -> None:
        t0 = time.monotonic()
        try:
            response = await client.post(url, content=PREDICT_BODY, headers=headers)
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        samples.append(Sample(at, status, time.monotonic() - t0))

    async with httpx.AsyncClient(timeout=5.0, limits=httpx.Limits(max_connections=64)) as client:
        tasks = []
        i = 0
        while (now := time.monotonic() - started) < seconds:
            due = i / rate
            if due > now:
                await asyncio.sleep(due - now)
            tasks.append(asyncio.create_task(one(client, due)))
            i += 1
        await asyncio.gather(*tasks)
    return samples


def report(name: str, samples: list[Sample], down: float, up: float, end: float) -> None:
    during = [s for s in samples if down <= s.sent_at < up]
    after = [s for s in samples if up <= s.sent_at < end]
    before = [s for s in samples if down - 5 <= s.sent_at < down]
    first_ok = next(
        (s.sent_at for s in sorted(after, key=lambda s: s.sent_at) if s.status == 200), None
    )
    last_bad = max((s.sent_at for s in after if s.status != 200), default=None)
    print(f"\n### {name} down from t={down:.0f} s to t={up:.0f} s\n")
    print("| window | requests | by status | slowest answer s |")
    print("|---|---:|---|---:|")
    for label, part in (("5 s before", before), ("while down", during), ("after restart", after)):
        statuses = ", ".join(
            f"{k or 'timeout'}: {v}" for k, v in sorted(Counter(s.status for s in part).items())
        )
        slowest = max((s.seconds for s in part), default=0.0)
        print(f"| {label} | {len(part)} | {statuses} | {slowest:.3f} |")
    if first_ok is not None:
        last = "none" if last_bad is None else f"+{last_bad - up:.2f} s"
        print(f"\nfirst 200 after restart: +{first_ok - up:.2f} s; last non-200 after it: {last}")


DROPPED = "garoupa_prediction_log_dropped_total"


def _metric_sum(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def report_log(url: str, samples: list[Sample], dropped: float) -> None:
    from sqlalchemy import create_engine, text

    answered = sum(1 for s in samples if s.status == 200)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = int(connection.execute(text("SELECT count(*) FROM prediction_log")).scalar_one())
    finally:
        engine.dispose()
    print("\n### Prediction log across both outages\n")
    print("| 200 answers | log rows | lost | dropped (counter, before shutdown) |")
    print("|---:|---:|---:|---:|")
    print(f"| {answered} | {rows} | {answered - rows} | {dropped:.0f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100, help="requests per second")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or PG_BIN is None or shutil.which("redis-server") is None:
        sys.exit("needs root, redis-server and PostgreSQL's server binaries")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)
        redis, postgres = OwnRedis(workdir), OwnPostgres(workdir)
        redis.start()
        postgres.start()
        try:
            env = prepare_deployment(
                workdir,
                {
                    "DATABASE_URL": postgres.url,
                    "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
                    # A real (high) limit, so every request consults Redis.
                    "RATE_LIMIT_PREDICT": "1000000/minute",
                },
            )
            with uvicorn_server(env, workers=2) as base:
                bearer = token(base)
                print(
                    f"{args.rate:.0f} req/s paced, 2 workers, own Redis :{redis.port}, "
                    f"own PostgreSQL :{postgres.port}"
                )
                timeline = [
                    (10.0, redis.stop),
                    (20.0, redis.start),
                    (35.0, postgres.stop),
                    (45.0, postgres.start),
                ]

                async def run() -> list[Sample]:
                    load = asyncio.create_task(
                        paced_load(f"{base}/predict/", bearer, args.rate, 65)
                    )
                    started = time.monotonic()
                    for at, action in timeline:
                        await asyncio.sleep(max(0.0, at - (time.monotonic() - started)))
                        await asyncio.to_thread(action)
                    return await load

                samples = asyncio.run(run())
                dropped = _metric_sum(httpx.get(f"{base}/metrics").text, DROPPED)
            report("Redis", samples, 10, 20, 35)
            report("PostgreSQL", samples, 35, 45, 65)
            report_log(postgres.url, samples, dropped)
        finally:
            for stop in (redis.stop, postgres.stop):
                try:
                    stop()
                except Exception:
                    pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
