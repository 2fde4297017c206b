"""Where a `POST /predict/` spends its time: a sampling profile of one loaded worker.

One uvicorn worker serves Garoupa as deployed (request logging and metrics on);
wrk loads `POST /predict/` at 32 connections while py-spy samples the worker,
idle frames excluded. It writes a flame graph (SVG) and prints the share of
samples spent under each part of the request path, so a change to one of them
can be checked against the same table.

    python benchmarks/profile_predict.py [--duration 15] [--data CSV]
        [--svg docs/img/predict-flamegraph.svg] [--raw stacks.txt]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.loadgen import (  # noqa: E402
    have_wrk,
    load,
    prepare_deployment,
    token,
)
from benchmarks.serving_bench import serve  # noqa: E402

CONCURRENCY = 32
PY_SPY_RATE = 250  # samples per second: a sample every 4 ms, cheap for the worker
# A frame whose function (and file) contains one of these counts towards the part.
# Each sample goes to one part: the first match walking from the sampled frame
# towards the root, so a part's share is the time spent in it and not below it
# in another part (the middleware's share excludes the route it calls).
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("route: model scoring (fast path)", ("app/ml/",)),
    ("route: ranking, counting, response model", ("app/services/prediction.py", "predict.py")),
    ("bearer token (gate, cache, revocation)", ("BearerGate", "verify_bearer", "jwt/", "tokens")),
    ("rate limit check", ("rate_limit.py", "limits/")),
    ("request logging (record, queue, format, write)", ("logging/", "pythonjsonlogger")),
    ("metrics (prometheus_client)", ("prometheus_client",)),
    ("request id, size limits (app middleware)", ("middleware.py",)),
    ("FastAPI dependency resolution", ("fastapi/dependencies",)),
    ("request body: read + validate (pydantic)", ("pydantic", "_validate_request_body", "body (")),
    ("response serialisation", ("serialize_response", "jsonable_encoder", "responses.py")),
    ("routing (FastAPI/Starlette)", ("fastapi/routing.py", "starlette/routing.py")),
    ("other Starlette middleware", ("starlette/middleware", "fastapi/middleware")),
    ("uvicorn + HTTP parsing (httptools)", ("uvicorn/",)),
    ("asyncio event loop", ("asyncio/",)),
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds of load and sampling")
    parser.add_argument(
        "--data", type=Path, help="train on this product_name,category CSV (default: shipped)"
    )
    parser.add_argument(
        "--svg", type=Path, help="write the flame graph here (default: only the table)"
    )
    parser.add_argument(
        "--raw", type=Path, help="also keep py-spy's collapsed stacks (one line per stack)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Profile one loaded worker and print where its samples fall."""
    args = parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("py-spy is not installed (pip install -r requirements-dev.txt)", file=sys.stderr)
        return 2
    if not have_wrk():
        print("wrk is not installed (Debian package wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = prepare_deployment(work, data=args.data)
        with serve(env, "app.main:app", 1, work / "server.log") as server:
            bearer = token(server.base)
            load(f"{server.base}/predict/", bearer, CONCURRENCY, 2)  # warm-up
            collapsed = work / "profile.txt"
            base = [py_spy, "record", "--pid", str(server.master), "--rate", str(PY_SPY_RATE)]
            # --gil: only samples holding the GIL, so a thread waiting on I/O or a
            # queue (the log writer) is not counted as work.
            base += ["--duration", str(args.duration), "--nonblocking", "--gil"]
            recorders = [subprocess.Popen([*base, "--format", "raw", "-o", str(collapsed)])]
            if args.svg is not None:
                args.svg.parent.mkdir(parents=True, exist_ok=True)
                svg = [*base, "--format", "flamegraph", "-o", str(args.svg)]
                recorders.append(subprocess.Popen(svg))
            result: list[object] = []
            loader = threading.Thread(
                target=lambda: result.append(
                    load(f"{server.base}/predict/", bearer, CONCURRENCY, args.duration)
                )
            )
            loader.start()
            loader.join(timeout=args.duration + 120)
            for recorder in recorders:
                recorder.wait(timeout=args.duration + 120)
        print(f"load during sampling: {result[0] if result else 'did not finish'}\n")
        if args.raw is not None:
            shutil.copyfile(collapsed, args.raw)
        print(table(collapsed.read_text()))
    return 0


def table(collapsed: str) -> str:
    """Markdown table: share of samples under each part of the request path."""
    total = 0
    hits: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        hits[_part(stack)] += count
    rows = ["| part of the request path | share of samples |", "|---|---:|"]
    for part, _ in PARTS:
        rows.append(f"| {part} | {hits[part] / max(total, 1):.1%} |")
    rows.append(f"| anything else | {hits[OTHER] / max(total, 1):.1%} |")
    rows.append(f"| (all samples: {total:,}) | 100% |")
    return "\n".join(rows)


OTHER = "other"


def _part(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        for part, needles in PARTS:
            if any(needle in frame for needle in needles):
                return part
    return OTHER


if __name__ == "__main__":
    raise SystemExit(main())
