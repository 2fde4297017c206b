"""Instructions one `POST /predict/` costs, counted rather than timed.

Throughput on a shared 2-core machine swings by ±15 % from run to run, too much
to see a 3 % change in the request path. Valgrind's callgrind counts the
instructions the interpreter executes instead, which repeat exactly for the
same code and inputs whatever else the machine is doing.

The app is driven in-process through ASGI (no socket, no HTTP parser, no load
generator): the lifespan starts, a token is issued, then N identical
`POST /predict/` requests run through every middleware, dependency, route and
the access log, exactly as under uvicorn. Two runs, with FEW and MANY requests,
cancel start-up: per request = (I(MANY) - I(FEW)) / (MANY - FEW).

    python benchmarks/request_cost.py [--few 100] [--many 600] [--data CSV]
    python benchmarks/request_cost.py --wall      # no valgrind: seconds instead

Compare two checkouts by running the script from each (same --data).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.loadgen import (  # noqa: E402
    CLIENT_ID,
    CLIENT_SECRET,
    PREDICT_BODY,
    prepare_deployment,
)

CALLGRIND_TIMEOUT_SECONDS = 3600


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--few", type=int, default=100, help="requests in the short run")
    parser.add_argument("--many", type=int, default=600, help="requests in the long run")
    parser.add_argument(
        "--data", type=Path, help="train on this product_name,category CSV (default: shipped)"
    )
    parser.add_argument(
        "--wall", action="store_true", help="time in seconds instead of counting instructions"
    )
    parser.add_argument("--drive", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 0 < args.few < args.many:
        parser.error("--few must be positive and smaller than --many")
    return args


async def drive(requests: int) -> float:
    """Start the app's lifespan, fetch a token, send `requests` predictions; seconds taken."""
    from app.main import create_app

    app = create_app()
    lifespan_inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan_outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.create_task(
        app(
            {"type": "lifespan", "asgi": {"version": "3.0"}},
            lifespan_inbox.get,
            lifespan_outbox.put,
        )
    )
    await lifespan_inbox.put({"type": "lifespan.startup"})
    started = await lifespan_outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the app did not start: {started}")
    form = f"grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
    status, body = await call(
        app, "/auth/token", form.encode(), [(b"content-type", b"application/x-www-form-urlencoded")]
    )
    if status != 200:
        raise RuntimeError(f"/auth/token answered {status}: {body[:200]!r}")
    headers = [
        (b"authorization", b"Bearer " + json.loads(body)["access_token"].encode()),
        (b"content-type", b"application/json"),
    ]
    payload = PREDICT_BODY.encode()
    begin = time.perf_counter()
    for _ in range(requests):
        status, body = await call(app, "/predict/", payload, headers)
        if status != 200:
            raise RuntimeError(f"/predict/ answered {status}: {body[:200]!r}")
    elapsed = time.perf_counter() - begin
    await lifespan_inbox.put({"type": "lifespan.shutdown"})
    await lifespan
    return elapsed


async def call(
    app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int, bytes]:
    """One POST through the ASGI app; its status and body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def instructions(env: dict[str, str], requests: int, workdir: Path) -> int:
    """Instructions a whole `--drive requests` process executes under callgrind."""
    out = workdir / f"callgrind.{requests}.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(Path(__file__).resolve()),
        "--drive",
        str(requests),
    ]
    subprocess.run(
        command,
        env=env,
        cwd=workdir,
        check=True,
        capture_output=True,
        timeout=CALLGRIND_TIMEOUT_SECONDS,
    )
    match = re.search(r"^(?:summary|totals):\s*(\d+)", out.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    """Count (or time) the cost of one prediction request."""
    args = parse_args(argv)
    if args.drive is not None:
        # The process under valgrind: its stdout carries the seconds for --wall.
        print(asyncio.run(drive(args.drive)))
        return 0
    if not args.wall and shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian package valgrind); try --wall", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print("training and registering a client ...", file=sys.stderr)
        # The background loops run on the clock, and under valgrind the clock runs
        # fifty times slower than the requests: at their longest allowed interval
        # they add the least to the count.
        env = prepare_deployment(
            workdir,
            {"MODEL_REFRESH_SECONDS": "4", "REVOCATION_REFRESH_SECONDS": "5"},
            data=args.data,
        )
        if args.wall:
            seconds = {}
            for n in (args.few, args.many):
                done = subprocess.run(
                    [sys.executable, str(Path(__file__).resolve()), "--drive", str(n)],
                    env=env,
                    cwd=workdir,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                seconds[n] = float(done.stdout.strip().splitlines()[-1])
            per = (seconds[args.many] - seconds[args.few]) / (args.many - args.few)
            print(f"{per * 1e6:,.0f} µs per POST /predict/ (in-process, wall clock)")
            return 0
        counts = {}
        for n in (args.few, args.many):
            print(f"callgrind: {n} requests ...", file=sys.stderr)
            counts[n] = instructions(env, n, workdir)
        per = (counts[args.many] - counts[args.few]) / (args.many - args.few)
        print(f"{per / 1e6:.3f} M instructions per POST /predict/ (in-process, callgrind)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
