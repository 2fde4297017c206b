"""Where a `POST /predict/` spends its time: a sampling profile of one loaded worker.

One uvicorn worker serves Garoupa as deployed (request logging and metrics on);
wrk loads `POST /predict/` at 32 connections while py-spy samples the worker,
idle frames excluded. It writes a flame graph (SVG) and prints the share of
samples spent under each part of the request path, so a change to one of them
can be checked against the same table.

    python benchmarks/profile_predict.py [--duration 15] [--data CSV]
        [--svg docs/img/predict-flamegraph.svg]
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
# A frame whose function (and file) contains one of these counts towards the part;
# a sample counts once per part however deep the match. Order is the table's.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("uvicorn + HTTP parsing (httptools)", ("uvicorn/protocols",)),
    ("asyncio event loop itself", ("asyncio/base_events.py", "asyncio/events.py")),
    ("request middleware: id, access log, metrics", ("RequestContext",)),
    ("request logging (format + write)", ("logging/__init__.py", "pythonjsonlogger")),
    ("metrics (prometheus_client)", ("prometheus_client",)),
    ("bearer token check (BearerGate, PyJWT)", ("BearerGate", "verify_bearer", "jwt/")),
    ("FastAPI dependency resolution", ("solve_dependencies",)),
    ("request validation (pydantic)", ("_validate_request_body", "request_body_to_args")),
    ("response validation + serialisation", ("serialize_response", "jsonable_encoder")),
    ("route: model scoring (fast path)", ("app/ml/fast_",)),
    ("route: ranking + metrics count", ("prediction.py:rank", "count_prediction")),
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
            base += ["--duration", str(args.duration), "--nonblocking"]
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
        for part, needles in PARTS:
            if any(needle in stack for needle in needles):
                hits[part] += count
    rows = ["| part of the request path | share of samples |", "|---|---:|"]
    for part, _ in PARTS:
        rows.append(f"| {part} | {hits[part] / max(total, 1):.1%} |")
    rows.append(f"| (all samples: {total:,}) | 100% |")
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
