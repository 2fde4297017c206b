"""Garoupa's POST /predict/ beside the floor (issue 12): requests/s, latency and memory.

The floor (benchmarks/floor_app.py) is the cheapest honest server of the same call.
Both are served from one throw-away deployment (same SECRET_KEY, so one token from
Garoupa's /auth/token serves both). For every round and worker count, each server
in turn is started by uvicorn, warmed up, loaded by wrk at 32 connections, and the
RSS and PSS of its worker processes are sampled from /proc/<pid>/smaps_rollup
during the load. Interleaving the servers spreads whatever else the machine is
doing over both instead of one. Garoupa runs as deployed: request logging (to a
file under the temporary directory) and metrics on, a model trained beforehand.

    python benchmarks/serving_bench.py [--rounds 3] [--duration 10] [--workers 1 2]
        [--data CSV] [--precision float64|float32] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.db.database import open_database  # noqa: E402
from app.services.models import ModelRegistry  # noqa: E402
from benchmarks.loadgen import (  # noqa: E402
    PREDICT_BODY,
    ROOT,
    add_precision_option,
    free_port,
    have_wrk,
    load,
    memory_kib,
    prepare_deployment,
    token,
)

# name: (how it is served, the app). uvicorn's --workers spawns fresh interpreters;
# gunicorn with app/gunicorn_conf.py forks them from a preloaded master.
SERVERS = {
    "floor": ("uvicorn", "benchmarks.floor_app:app"),
    "Garoupa": ("uvicorn", "app.main:app"),
}
GUNICORN = "Garoupa, gunicorn"
GUNICORN_SERVER = ("gunicorn", "app.main:app")
CONCURRENCY = 32
WARMUP_SECONDS = 2
SAMPLE_SECONDS = 0.25
# Two workers each loading the model on a busy two-core machine can take a while;
# past this a server is declared dead rather than waited for.
READY_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0
# What uvicorn logs once per process when the app's lifespan has started; counting
# it is the only way to know that every worker, not just the first, is serving.
STARTUP_LINE = b"Application startup complete"


@dataclass(frozen=True)
class ModelInfo:
    """The version both benchmarks' Garoupa serves."""

    version: str
    algorithm: str
    categories: int
    features: int
    rows: int
    data: str
    weights_dtype: str


@dataclass
class Run:
    """One server, one worker count, one round."""

    round: int
    workers: int
    server: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    warmup_errors: int
    # Peak over the load run, per worker PID (several PIDs per slot if uvicorn restarted one).
    peak_rss_mib: dict[int, float] = field(default_factory=dict)
    peak_pss_mib: dict[int, float] = field(default_factory=dict)
    # Peak of the PSS summed over the workers alive at each sample.
    total_pss_mib: float = 0.0
    samples: int = 0


@dataclass(frozen=True)
class Server:
    """A running server: its base URL and the PID of the process it was started as."""

    base: str
    master: int
    workers: int
    log: Path
    kind: str = "uvicorn"


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def describe_model(env: dict[str, str], data: Path | None) -> ModelInfo:
    """The active version from the registry, with its feature count from its stored scorer."""
    database = open_database(env["DATABASE_URL"], migrate=False)
    with database, database.sessions() as session:
        registry = ModelRegistry(session, Path(env["MODEL_DIR"]))
        row = registry.active()
        if row is None:
            raise RuntimeError("training registered no active model")
        # The stored scorer's manifest: the width of the matrix the classifier reads.
        manifest = json.loads((Path(env["MODEL_DIR"]) / row.scorer_file).read_text())
        features = int(manifest["n_features"])
        return ModelInfo(
            version=row.version,
            algorithm=row.algorithm,
            categories=len(row.classes),
            features=features,
            rows=row.data_rows,
            data=str(data) if data else "data/products.csv (shipped)",
            weights_dtype=manifest.get("weights_dtype", "float64"),
        )


def machine() -> dict[str, Any]:
    """Cores, CPU model, Python and the load average before the first run."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "load_average": os.getloadavg()[0],
    }


@contextmanager
def serve(
    env: dict[str, str], app: str, workers: int, log: Path, kind: str = "uvicorn"
) -> Iterator[Server]:
    """Serve `app` with uvicorn or gunicorn until the block ends, once every worker started."""
    port = free_port()
    if kind == "gunicorn":
        command = [sys.executable, "-m", "gunicorn", "-c", "python:app.gunicorn_conf"]
        command += ["-w", str(workers), "-b", f"127.0.0.1:{port}", app]
    else:
        command = [sys.executable, "-m", "uvicorn", app, "--port", str(port)]
        # Garoupa logs every request itself; uvicorn's own access line would log it twice.
        command += ["--workers", str(workers), "--no-access-log"]
    # A per-run metrics directory, as an operator sets one per deployment: no files
    # from an earlier run are summed into this one's, and none are left in /tmp.
    metrics_dir = log.with_suffix(".metrics")
    metrics_dir.mkdir()
    server_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    # A file, not a pipe: nobody reads the output during the run, and a full pipe
    # would block the server's logging and with it every request.
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            env=server_env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process.pid, workers, log, kind)
    try:
        _wait_until_ready(process, server)
        yield server
    finally:
        _stop(process)


def _wait_until_ready(process: subprocess.Popen[bytes], server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"uvicorn exited with status {process.returncode}; its log:\n{_tail(server.log)}"
            )
        if server.log.read_bytes().count(STARTUP_LINE) >= server.workers:
            try:
                # Any answer will do (405 here): it proves the socket is served.
                httpx.get(f"{server.base}/predict/", timeout=2)
                return
            except httpx.TransportError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"uvicorn did not start {server.workers} worker(s) within "
                f"{READY_TIMEOUT_SECONDS:.0f} s; its log:\n{_tail(server.log)}"
            )
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


def _tail(log: Path, chars: int = 3000) -> str:
    return log.read_bytes()[-chars:].decode(errors="replace")


def worker_pids(server: Server) -> list[int]:
    """The processes running the app: uvicorn itself with one worker, else its spawned children
    (gunicorn: always its forked children)."""
    if server.workers == 1 and server.kind == "uvicorn":
        return [server.master]
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue  # gone since listdir
        # The command name in field 2 may hold spaces and parentheses; fields after
        # the last ")" are fixed: state, then the parent's PID.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        # The supervisor also starts multiprocessing's resource tracker; only the
        # spawned workers run spawn_main.
        if ppid == server.master and (server.kind == "gunicorn" or b"spawn_main" in cmdline):
            pids.append(int(entry))
    return sorted(pids)


class MemorySampler:
    """Samples every worker's RSS and PSS in a background thread until stopped."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak_rss: dict[int, int] = {}
        self.peak_pss: dict[int, int] = {}
        self.peak_total_pss = 0
        self.samples = 0

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(SAMPLE_SECONDS):
                return

    def sample(self) -> None:
        """Read every worker once and fold the values into the peaks."""
        total = 0
        for pid in worker_pids(self._server):
            memory = memory_kib(pid)
            if memory is None:
                continue
            rss, pss = memory
            self.peak_rss[pid] = max(rss, self.peak_rss.get(pid, 0))
            self.peak_pss[pid] = max(pss, self.peak_pss.get(pid, 0))
            total += pss
        if self._server.kind == "gunicorn":
            # Gunicorn's master holds the pages its workers share: part of their cost.
            master = memory_kib(self._server.master)
            total += master[1] if master is not None else 0
        self.peak_total_pss = max(total, self.peak_total_pss)
        self.samples += 1


def measure(
    env: dict[str, str], bearer: str, name: str, workers: int, round_: int, duration: int, tmp: Path
) -> Run:
    """Start one server, check one answer, warm up, then load it while sampling memory."""
    log = tmp / "logs" / f"r{round_}-w{workers}-{name}.log"
    kind, app = SERVERS[name]
    with serve(env, app, workers, log, kind) as server:
        found = worker_pids(server)
        if len(found) != workers:
            raise RuntimeError(f"{name}: expected {workers} worker(s), found PIDs {found}")
        url = f"{server.base}/predict/"
        headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
        check = httpx.post(url, content=PREDICT_BODY, headers=headers, timeout=10)
        if check.status_code != 200:
            raise RuntimeError(f"{name} answered {check.status_code}: {check.text[:500]}")
        warmup = load(url, bearer, CONCURRENCY, WARMUP_SECONDS)
        with MemorySampler(server) as sampler:
            result = load(url, bearer, CONCURRENCY, duration)
    mib = 1024
    return Run(
        round=round_,
        workers=workers,
        server=name,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        errors=result.errors,
        warmup_errors=warmup.errors,
        peak_rss_mib={pid: kib / mib for pid, kib in sampler.peak_rss.items()},
        peak_pss_mib={pid: kib / mib for pid, kib in sampler.peak_pss.items()},
        total_pss_mib=sampler.peak_total_pss / mib,
        samples=sampler.samples,
    )


def medians(runs: list[Run]) -> dict[str, float]:
    """Medians over rounds of one server at one worker count (errors are summed)."""
    return {
        "rps": statistics.median(r.rps for r in runs),
        "p50_ms": statistics.median(r.p50_ms for r in runs),
        "p99_ms": statistics.median(r.p99_ms for r in runs),
        "errors": sum(r.errors for r in runs),
        # The largest worker: with two workers, what each needs room for.
        "peak_rss_mib": statistics.median(max(r.peak_rss_mib.values()) for r in runs),
        "total_pss_mib": statistics.median(r.total_pss_mib for r in runs),
    }


def report(
    info: dict[str, Any], model: ModelInfo, args: argparse.Namespace, runs: list[Run]
) -> dict[str, dict[str, dict[str, float]]]:
    """Print the header and one markdown table per worker count; return the medians."""
    print("## POST /predict/: Garoupa against the floor\n")
    print(
        f"- machine: {info['cores']} cores ({info['cpu']}), Python {info['python']}, "
        f"load average {info['load_average']:.2f} before the first run"
    )
    print(
        f"- model: {model.version} ({model.algorithm}), {model.categories} categories, "
        f"{model.features:,} features, {model.rows:,} rows from {model.data}"
    )
    print(
        f"- load: wrk, {CONCURRENCY} connections, {args.duration} s per run after a "
        f"{WARMUP_SECONDS} s warm-up; medians of {args.rounds} round(s), servers interleaved; "
        "errors are non-2xx answers and socket errors, summed over rounds"
    )
    print(
        f"- memory: /proc/<pid>/smaps_rollup every {SAMPLE_SECONDS} s during the load; "
        "RSS of the largest worker, PSS summed over workers (uvicorn's supervisor not counted, "
        "gunicorn's master counted)"
    )
    table: dict[str, dict[str, dict[str, float]]] = {}
    for workers in args.workers:
        row = {
            name: medians([r for r in runs if r.workers == workers and r.server == name])
            for name in SERVERS
        }
        table[str(workers)] = row
        print(f"\n### {workers} worker{'s' if workers > 1 else ''}\n")
        print(
            "| server | requests/s | p50 ms | p99 ms | errors "
            "| peak RSS per worker MiB | total PSS MiB |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, m in row.items():
            print(
                f"| {name} | {m['rps']:,.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} "
                f"| {m['errors']:.0f} | {m['peak_rss_mib']:.1f} | {m['total_pss_mib']:.1f} |"
            )
        floor = row["floor"]
        for name in (n for n in row if n != "floor"):
            print(
                f"| **{name} ÷ floor** | **{row[name]['rps'] / floor['rps']:.2f}×** | "
                f"| **{row[name]['p99_ms'] / floor['p99_ms']:.2f}×** | | | |"
            )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=3,
        help="interleaved rounds; the tables show the median over them (default: %(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=positive_int,
        default=10,
        metavar="SECONDS",
        help=f"measured load per run, after a {WARMUP_SECONDS} s warm-up (default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        nargs="+",
        default=[1, 2],
        metavar="N",
        help="uvicorn worker counts to measure, one table each (default: 1 2)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="CSV",
        help="two-column product_name,category CSV to train Garoupa's model on "
        "(default: the shipped data/products.csv)",
    )
    add_precision_option(parser)
    parser.add_argument(
        "--gunicorn",
        action="store_true",
        help="also serve Garoupa through gunicorn with app/gunicorn_conf.py (workers forked "
        "from a preloaded master; its master's PSS counts in the total)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="OUT",
        help="also write the machine, the model, every run and the medians to this JSON file",
    )
    args = parser.parse_args(argv)
    if not have_wrk():
        parser.error("wrk is not installed (Debian package `wrk`); this benchmark needs it")
    data = args.data.resolve() if args.data else None
    if data is not None and not data.is_file():
        parser.error(f"--data {args.data} is not a file")
    args.workers = list(dict.fromkeys(args.workers))
    if args.gunicorn:
        SERVERS[GUNICORN] = GUNICORN_SERVER

    info = machine()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as name:
        tmp = Path(name)
        (tmp / "logs").mkdir()
        _progress("training the model and registering a client ...")
        env = prepare_deployment(tmp, {"SCORER_PRECISION": args.precision}, data=data)
        model = describe_model(env, data)
        # From a server that is not measured: issuing a token runs Argon2id, whose
        # 64 MiB would otherwise count in the measured worker's peak memory.
        with serve(env, SERVERS["Garoupa"][1], 1, tmp / "logs" / "token.log") as server:
            bearer = token(server.base)
        for round_ in range(1, args.rounds + 1):
            for workers in args.workers:
                for server_name in SERVERS:
                    run = measure(env, bearer, server_name, workers, round_, args.duration, tmp)
                    runs.append(run)
                    _progress(
                        f"round {round_}/{args.rounds}, {workers} worker(s), {server_name}: "
                        f"{run.rps:,.0f} req/s, p99 {run.p99_ms:.2f} ms, {run.errors} errors, "
                        f"PSS {run.total_pss_mib:.1f} MiB"
                    )
    table = report(info, model, args, runs)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "model": asdict(model),
                    "settings": {
                        "rounds": args.rounds,
                        "duration_s": args.duration,
                        "warmup_s": WARMUP_SECONDS,
                        "concurrency": CONCURRENCY,
                        "workers": args.workers,
                    },
                    "runs": [asdict(r) for r in runs],
                    "medians": table,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


def _progress(message: str) -> None:
    # stderr, so that stdout holds nothing but the report.
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
