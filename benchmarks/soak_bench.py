"""Soak: POST /predict/ at about 70 % of the measured maximum for 10 minutes, two workers.

First measures the maximum (wrk, 32 connections, 15 s), then holds a paced load of
70 % of it (wrk's Lua `delay()` spaces each connection's requests) in one-minute
segments, sampling every worker's RSS after each. Reports errors, p99 per segment
(drift = last / first) and RSS growth per worker.

    python benchmarks/soak_bench.py [--minutes 10] [--share 0.7]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.loadgen import (  # noqa: E402
    PREDICT_BODY,
    have_wrk,
    load,
    prepare_deployment,
    token,
    uvicorn_server,
)

CONNECTIONS = 16


def worker_pids(port: int) -> list[int]:
    """uvicorn worker processes: children of the process listening on `port`'s parent."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
    rows = [line.split(None, 2) for line in out.splitlines()[1:]]
    supervisors = [
        int(pid)
        for pid, _, args in rows
        if "uvicorn" in args and f"--port {port}" in args and "multiprocessing" not in args
    ]
    # Workers are spawned through multiprocessing; the supervisor's other child is
    # multiprocessing's resource tracker, which serves no requests.
    return [
        int(pid) for pid, ppid, args in rows if int(ppid) in supervisors and "spawn_main" in args
    ]


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


def paced_segment(url: str, bearer: str, rate: float, seconds: int) -> tuple[float, float, int]:
    """Requests/s, p99 ms and errors of `seconds` of load paced at `rate` requests/s."""
    delay_ms = 1000.0 * CONNECTIONS / rate
    fd, name = tempfile.mkstemp(suffix=".lua")
    os.close(fd)
    script = Path(name)
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{PREDICT_BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {bearer}"\n'
        f"function delay() return {delay_ms:.3f} end\n"
    )
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{CONNECTIONS}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        script.unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    match = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    assert match, out
    value, unit = float(match.group(1)), match.group(2)
    p99 = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    return rps, p99, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--share", type=float, default=0.7, help="share of the measured maximum")
    args = parser.parse_args(argv)
    if not have_wrk():
        sys.exit("the soak benchmark paces load with wrk: apt-get install wrk")

    with tempfile.TemporaryDirectory() as tmp:
        env = prepare_deployment(Path(tmp), {"RATE_LIMIT_PREDICT": "unlimited"})
        with uvicorn_server(env, workers=2) as base:
            port = int(base.rsplit(":", 1)[1])
            bearer = token(base)
            url = f"{base}/predict/"
            peak = load(url, bearer, 32, 15)
            rate = peak.rps * args.share
            pids = worker_pids(port)
            start_rss = {pid: rss_mb(pid) for pid in pids}
            print(f"maximum: {peak.rps:,.0f} req/s (c=32, 2 workers); target {rate:,.0f} req/s")
            print(
                f"workers: {pids}, RSS at start (MB): "
                + ", ".join(f"{v:.1f}" for v in start_rss.values())
            )
            print(
                "\n| minute | requests/s | p99 ms | errors | "
                + " | ".join(f"RSS {pid} MB" for pid in pids)
                + " |"
            )
            print("|---:|---:|---:|---:|" + "---:|" * len(pids))
            p99s: list[float] = []
            total_errors = 0
            started = time.monotonic()
            for minute in range(1, args.minutes + 1):
                rps, p99, errors = paced_segment(url, bearer, rate, 60)
                p99s.append(p99)
                total_errors += errors
                rss = [rss_mb(pid) for pid in pids]
                print(
                    f"| {minute} | {rps:,.0f} | {p99:.2f} | {errors} | "
                    + " | ".join(f"{v:.1f}" for v in rss)
                    + " |",
                    flush=True,
                )
            elapsed = time.monotonic() - started
            end_rss = {pid: rss_mb(pid) for pid in pids}
    print(f"\n{elapsed / 60:.1f} minutes, {total_errors} errors")
    print(
        f"p99 first minute {p99s[0]:.2f} ms, last {p99s[-1]:.2f} ms "
        f"(drift {p99s[-1] / p99s[0]:.2f}x), max {max(p99s):.2f} ms"
    )
    for pid in pids:
        growth = (end_rss[pid] - start_rss[pid]) / start_rss[pid]
        print(f"worker {pid}: RSS {start_rss[pid]:.1f} -> {end_rss[pid]:.1f} MB ({growth:+.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
