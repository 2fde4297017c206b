"""How training, artifact size, load time, memory and latency scale with categories and features.

    python benchmarks/scaling_bench.py [--points 20:50000,133:100000,500:200000,1000:300000]
        [--workers 1 2 4] [--json OUT.json] [--plot OUT.png]

Each point `CATEGORIES:FEATURES` is a synthetic catalogue (benchmarks/synthetic.py,
calibrated so the 80 % train.py fits on has about FEATURES TF-IDF features),
trained by `train.py` as a subprocess into a fresh deployment (its own SQLite
database and MODEL_DIR) and then served, only through public entry points, so the
benchmark survives changes to how a version is stored and loaded:

* training: wall time of `train.py --data ...` (interpreter start to exit) and the
  peak RSS of its process tree, sampled every second;
* artifact: the size of every file the version wrote under MODEL_DIR;
* load, latency, batch: a fresh Python process builds a `PredictionService` as
  app/services/runtime.py does and times `sync()` until it returns True (the
  load time; imports not included), then the median and p99 of 2,000 in-process
  `predict([name])` calls on names drawn from the catalogue (after 200 warm-up
  calls on other names), and names/s of `predict(1,000 names)` (median of 5);
* memory: `uvicorn app.main:app --workers N` for each N of `--workers`; RSS and
  PSS (/proc/<pid>/smaps_rollup) of every process of the server once all N
  workers have loaded (uvicorn's "Application startup complete." once per worker,
  which follows the model load in the lifespan, and /ready answering 200), and
  again after `--requests` single and `--batch-requests` 1,000-name HTTP requests.
  With 1 worker the table shows that worker's RSS and PSS; with more, the total
  PSS of the whole server (supervisor and workers), which is what the machine pays.
  The 1-worker run also times HTTP single-name requests (p50/p99, sequential).

Large points take long and much memory (1000 categories x 300k features: tens of
minutes and several GB on 2 cores): every stage logs progress to stderr and every
wait is bounded (`--train-timeout`, `--load-timeout`, `--ready-timeout`); a point
that fails is recorded with its error and the next one runs. `--json` is rewritten
after each point, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.ml.algorithms import ALGORITHMS  # noqa: E402
from benchmarks import synthetic  # noqa: E402
from benchmarks.loadgen import add_precision_option, free_port, memory_kib  # noqa: E402

DEFAULT_POINTS = "20:50000,133:100000,500:200000,1000:300000"
# train.py's default hold-out; the vectorisers see the rest.
TEST_SIZE = 0.2
CLIENT_ID = "scaling-bench"
STARTUP_LINE = "Application startup complete."
MB = 1024 * 1024


def log(message: str) -> None:
    """A progress line on stderr (stdout carries only the table)."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- memory


def memory(pid: int) -> dict[str, int] | None:
    """RSS and PSS of `pid` in bytes, or None when it has gone."""
    found = memory_kib(pid)
    return None if found is None else {"rss": found[0] * 1024, "pss": found[1] * 1024}


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain ") "; the fields
    # after the last ")" are fixed: state, then the parent pid.
    return int(stat.rsplit(")", 1)[1].split()[1])


def process_tree(root: int) -> list[int]:
    """`root` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent_of(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, []))
    return tree


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def server_processes(root: int, workers: int, kind: str) -> tuple[list[int], list[int]]:
    """(worker pids, other pids) of a server started as `root`."""
    tree = process_tree(root)
    if kind == "gunicorn":
        # The master forks every worker (one too, with -w 1) and serves nothing itself.
        forked = [p for p in tree if _parent_of(p) == root]
        return forked, [p for p in tree if p not in forked]
    if workers == 1:
        # Without --workers > 1 uvicorn serves in the process it started in.
        return [root], [p for p in tree if p != root]
    spawned = [p for p in tree if p != root and "spawn_main" in _cmdline(p)]
    return spawned, [p for p in tree if p not in spawned]


def sample_server(root: int, workers: int, kind: str) -> dict[str, Any]:
    """Per-process and total RSS/PSS of a server's process tree, in bytes."""
    worker_pids, others = server_processes(root, workers, kind)
    worker_mem = [m for m in (memory(p) for p in worker_pids) if m is not None]
    other_mem = [m for m in (memory(p) for p in others) if m is not None]
    every = worker_mem + other_mem
    return {
        "workers": worker_mem,
        "others": other_mem,
        "total_rss": sum(m["rss"] for m in every),
        "total_pss": sum(m["pss"] for m in every),
        "workers_pss": sum(m["pss"] for m in worker_mem),
    }


# --------------------------------------------------------------------------- probe


def probe_main(argv: Sequence[str] | None = None) -> int:
    """Run in a fresh process: load the active version as a worker does and time it.

    Arguments: QUERIES_JSON OUT_JSON LATENCY_CALLS WARMUP_CALLS BATCH_SIZE.
    Settings come from the environment the benchmark set (DATABASE_URL, MODEL_DIR).
    """
    queries_path, out_path, calls, warmup, batch_size = argv or sys.argv[1:]
    n_calls, n_warmup, n_batch = int(calls), int(warmup), int(batch_size)
    started = time.perf_counter()
    # The same parts app/services/runtime.py builds a PredictionService from.
    from app.core.config import load_settings
    from app.core.metrics import setup_metrics
    from app.db.database import open_database
    from app.services.prediction import PredictionService

    import_s = time.perf_counter() - started
    settings = load_settings()
    metrics = setup_metrics()
    database = open_database(settings.database_url, migrate=False)
    service = PredictionService(database.sessions, settings.model_dir, metrics)
    pid = os.getpid()
    result: dict[str, Any] = {"import_s": import_s, "before_load": memory(pid)}

    started = time.perf_counter()
    swapped = service.sync()
    result["load_s"] = time.perf_counter() - started
    if not swapped:
        result["error"] = service.last_error or "sync() found no active version to load"
        Path(out_path).write_text(json.dumps(result))
        return 1
    result["after_load"] = memory(pid)
    model = service.model
    result["features"] = _model_features(model)
    try:
        result["classes"] = len(model.classes)
    except (AttributeError, TypeError):
        result["classes"] = None

    names: list[str] = json.loads(Path(queries_path).read_text())
    # Warm-up names differ from the timed ones: per-word caches then help only as
    # much as real traffic's repeated words would.
    for name in names[:n_warmup]:
        service.predict([name])
    timed = names[n_warmup : n_warmup + n_calls]
    latencies = []
    for name in timed:
        t = time.perf_counter()
        service.predict([name])
        latencies.append(time.perf_counter() - t)
    latencies.sort()
    result["single_calls"] = len(latencies)
    result["single_p50_us"] = statistics.median(latencies) * 1e6
    result["single_p99_us"] = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1e6

    batch = [names[i % len(names)] for i in range(n_batch)]
    rounds = []
    for _ in range(5):
        t = time.perf_counter()
        service.predict(batch)
        rounds.append(time.perf_counter() - t)
    result["batch_size"] = n_batch
    result["batch_names_per_s"] = n_batch / statistics.median(rounds)
    result["after_requests"] = memory(pid)
    service.close()
    database.dispose()
    Path(out_path).write_text(json.dumps(result))
    return 0


def _model_features(model: Any) -> int | None:
    """Feature count of the loaded pipeline, if it still is the documented Pipeline."""
    try:
        union = model.pipeline.named_steps["features"]
        return sum(len(vectoriser.vocabulary_) for _, vectoriser in union.transformer_list)
    except (AttributeError, KeyError, TypeError):
        # How a version is stored may change; the benchmark then falls back to
        # the generator's own measurement.
        return None


# --------------------------------------------------------------------------- deployment


@dataclass(frozen=True)
class Deployment:
    """A throw-away service installation: environment, directories, client secret."""

    workdir: Path
    env: dict[str, str]
    client_secret: str

    @property
    def model_dir(self) -> Path:
        return self.workdir / "models"


def make_deployment(workdir: Path, train_timeout: float, precision: str) -> Deployment:
    """Directories and environment for train.py, the probe and uvicorn."""
    for sub in ("models", "data", "metrics"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        # Fresh random values, never printed: nothing here is a real credential.
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "MODEL_DIR": str(workdir / "models"),
        "DATA_DIR": str(workdir / "data"),
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        "PYTHONPATH": str(ROOT),
        # Empty values are ignored by the settings, so a REDIS_URL in the caller's
        # environment cannot make the benchmark share state with a real deployment.
        "REDIS_URL": "",
        "RATE_LIMIT_PREDICT": "unlimited",
        "TRAINING_TIMEOUT_SECONDS": str(int(train_timeout)),
        "SCORER_PRECISION": precision,
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "INFO",
    }
    return Deployment(workdir, env, secrets.token_urlsafe(24))


def run_bounded(
    command: list[str],
    deployment: Deployment,
    *,
    timeout: float,
    label: str,
    log_file: Path,
    heartbeat: float = 30.0,
    stdin: str | None = None,
) -> tuple[int, float, int]:
    """Run `command` in the deployment; (exit code, seconds, peak RSS of its tree).

    Killed (whole process group) after `timeout` seconds, which raises TimeoutError.
    """
    started = time.perf_counter()
    peak = 0
    last_note = started
    with log_file.open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=deployment.workdir,
            env=deployment.env,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if stdin is not None and process.stdin is not None:
            process.stdin.write(stdin.encode())
            process.stdin.close()
        try:
            while process.poll() is None:
                now = time.perf_counter()
                rss = sum(m["rss"] for m in map(memory, process_tree(process.pid)) if m is not None)
                peak = max(peak, rss)
                if now - started > timeout:
                    raise TimeoutError(f"{label} exceeded {timeout:.0f} s")
                if now - last_note >= heartbeat:
                    log(f"  {label}: {now - started:.0f} s, RSS {rss / MB:,.0f} MB")
                    last_note = now
                time.sleep(1.0 if now - started > 5 else 0.2)
        finally:
            if process.poll() is None:
                _kill_group(process)
    return process.returncode, time.perf_counter() - started, peak


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass


def server_command(kind: str, port: int, workers: int) -> list[str]:
    """The command line an operator would serve with: uvicorn's, or gunicorn's with preload."""
    if kind == "gunicorn":
        command = [sys.executable, "-m", "gunicorn", "-c", "python:app.gunicorn_conf"]
        return command + ["-w", str(workers), "-b", f"127.0.0.1:{port}", "app.main:app"]
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), "--log-level", "info"]
    return command + ["--no-access-log"]


@contextmanager
def app_server(
    deployment: Deployment, workers: int, ready_timeout: float, kind: str
) -> Iterator[tuple[str, subprocess.Popen[bytes], dict[str, Any]]]:
    """Serve the deployment; yield (base URL, process, ready timings) once every worker loaded."""
    import httpx

    port = free_port()
    log_file = deployment.workdir / f"{kind}-{workers}.log"
    command = server_command(kind, port, workers)
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with log_file.open("ab") as out:
        server = subprocess.Popen(
            command,
            cwd=deployment.workdir,
            env=deployment.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    timings: dict[str, Any] = {"first_ready_s": None, "all_started_s": None}
    try:
        while True:
            elapsed = time.perf_counter() - started
            if server.poll() is not None:
                raise RuntimeError(f"{kind} exited with {server.returncode}; see {log_file}")
            if elapsed > ready_timeout:
                raise TimeoutError(
                    f"{workers} worker(s) not all ready after {ready_timeout:.0f} s; see {log_file}"
                )
            if timings["first_ready_s"] is None:
                try:
                    if httpx.get(f"{base}/ready", timeout=5).status_code == 200:
                        timings["first_ready_s"] = elapsed
                except httpx.HTTPError:
                    pass
            # Each worker logs this after its lifespan start-up, which loads the
            # active version, so N lines mean N loaded models. /ready alone cannot
            # tell: whichever worker accepts the connection answers it.
            started_workers = log_file.read_text(errors="replace").count(STARTUP_LINE)
            if timings["first_ready_s"] is not None and started_workers >= workers:
                timings["all_started_s"] = elapsed
                break
            time.sleep(0.25)
        yield base, server, timings
    finally:
        _kill_group(server)


def http_requests(
    base: str, deployment: Deployment, names: list[str], singles: int, batches: int, workers: int
) -> dict[str, Any]:
    """Single-name requests (timed) and 1,000-name batch requests against a live server."""
    import httpx

    response = httpx.post(
        f"{base}/auth/token",
        data={"grant_type": "client_credentials", "scope": "predict"},
        auth=(CLIENT_ID, deployment.client_secret),
        timeout=60,
    )
    response.raise_for_status()
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    # One connection per worker, used in turn, so that with several workers the
    # requests are likely (not certain: the kernel picks the acceptor) spread.
    clients = [httpx.Client(headers=headers, timeout=120) for _ in range(workers)]
    latencies: list[float] = []
    errors = 0
    try:
        for i in range(singles):
            client = clients[i % len(clients)]
            t = time.perf_counter()
            reply = client.post(f"{base}/predict/", json={"product_name": names[i % len(names)]})
            latencies.append(time.perf_counter() - t)
            errors += reply.status_code != 200
        for i in range(batches):
            chunk = [names[(i * 1000 + j) % len(names)] for j in range(1000)]
            reply = clients[i % len(clients)].post(
                f"{base}/predict/batch", json={"product_names": chunk}
            )
            errors += reply.status_code != 200
    finally:
        for client in clients:
            client.close()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else None
    return {
        "single_requests": len(latencies),
        "batch_requests": batches,
        "errors": errors,
        "http_p50_ms": statistics.median(latencies) * 1e3 if latencies else None,
        "http_p99_ms": p99 * 1e3 if p99 is not None else None,
    }


# --------------------------------------------------------------------------- one point


@dataclass(frozen=True)
class Options:
    """The command-line settings one point needs."""

    workers: list[int]
    seed: int
    calibrate: int
    train_timeout: float
    load_timeout: float
    ready_timeout: float
    latency_calls: int
    warmup_calls: int
    batch_size: int
    requests: int
    batch_requests: int
    heartbeat: float
    algorithm: str | None = None
    precision: str = "float64"
    server: str = "uvicorn"


def run_point(categories: int, target: int, workdir: Path, opts: Options) -> dict[str, Any]:
    """Generate, train, load and serve one point; every measurement in one dict."""
    tag = f"[{categories}:{target}]"
    point: dict[str, Any] = {"categories": categories, "target_features": target}

    log(f"{tag} generate (calibrating to {target:,} features on {1 - TEST_SIZE:.0%} of rows)")
    started = time.perf_counter()
    made = synthetic.calibrated(
        categories, target, opts.seed, fit_fraction=1 - TEST_SIZE, rounds=opts.calibrate
    )
    point.update(
        rows=len(made.rows),
        vocab=made.plan.vocab,
        generator_features=made.features["total"],
        calibration=made.attempts,
        generate_s=time.perf_counter() - started,
    )
    log(
        f"{tag}   {len(made.rows):,} rows, ~{made.features['total']:,} features "
        f"({point['generate_s']:.1f} s)"
    )
    deployment = make_deployment(workdir, opts.train_timeout, opts.precision)
    data_file = workdir / "catalogue.csv"
    synthetic.write_csv(made.rows, data_file)
    # Query names: a fixed sample of the catalogue, so ~80 % were trained on and
    # ~20 % are hold-out names, as traffic mixes known and new products.
    names = [made.rows[i][0] for i in _sample(len(made.rows), opts.seed)]
    queries = workdir / "queries.json"
    queries.write_text(json.dumps(names))

    log(f"{tag} train (train.py, timeout {opts.train_timeout:.0f} s)")
    train = [sys.executable, str(ROOT / "train.py"), "--data", str(data_file)]
    if opts.algorithm is not None:
        train += ["--algorithm", opts.algorithm]
    point["algorithm"] = opts.algorithm or "default"
    point["server"] = opts.server
    point["precision"] = opts.precision
    code, seconds, peak = run_bounded(
        train,
        deployment,
        timeout=opts.train_timeout,
        label="train.py",
        log_file=workdir / "train.log",
        heartbeat=opts.heartbeat,
    )
    train_output = (workdir / "train.log").read_text(errors="replace")
    if code != 0:
        raise RuntimeError(f"train.py exited with {code}: {_last_line(train_output)}")
    point.update(train_s=seconds, train_peak_rss=peak, macro_f1=_macro_f1(train_output))
    log(f"{tag}   trained in {seconds:.1f} s, peak RSS {peak / MB:,.0f} MB")

    files = sorted(p for p in deployment.model_dir.rglob("*") if p.is_file())
    point["artifact_files"] = {
        str(p.relative_to(deployment.model_dir)): p.stat().st_size for p in files
    }
    point["artifact_bytes"] = sum(point["artifact_files"].values())

    code, _, _ = run_bounded(
        [sys.executable, str(ROOT / "scripts" / "manage_clients.py"), "add", "Scaling bench"]
        + [CLIENT_ID, "--scopes", "predict", "--secret-stdin"],
        deployment,
        timeout=120,
        label="manage_clients.py",
        log_file=workdir / "clients.log",
        stdin=deployment.client_secret + "\n",
    )
    if code != 0:
        raise RuntimeError(f"manage_clients.py exited with {code}; see {workdir / 'clients.log'}")

    log(f"{tag} load + in-process latency (fresh process, timeout {opts.load_timeout:.0f} s)")
    probe_out = workdir / "probe.json"
    probe = (
        "import sys; from benchmarks.scaling_bench import probe_main; "
        "raise SystemExit(probe_main(sys.argv[1:]))"
    )
    code, _, _ = run_bounded(
        [sys.executable, "-c", probe, str(queries), str(probe_out)]
        + [str(opts.latency_calls), str(opts.warmup_calls), str(opts.batch_size)],
        deployment,
        timeout=opts.load_timeout,
        label="probe",
        log_file=workdir / "probe.log",
        heartbeat=opts.heartbeat,
    )
    result = json.loads(probe_out.read_text()) if probe_out.exists() else {}
    if code != 0:
        detail = result.get("error") or _last_line((workdir / "probe.log").read_text())
        raise RuntimeError(f"probe exited with {code}: {detail}")
    point["probe"] = result
    point["features"] = result.get("features") or made.features["total"]
    point["features_source"] = "loaded model" if result.get("features") else "generator"
    point["classes"] = result.get("classes") or categories
    log(
        f"{tag}   loaded in {result['load_s']:.2f} s; p50 {result['single_p50_us']:.0f} us, "
        f"batch {result['batch_names_per_s']:,.0f} names/s"
    )

    point["servers"] = {}
    for workers in opts.workers:
        log(f"{tag} serve with {workers} worker(s) (ready timeout {opts.ready_timeout:.0f} s)")
        serving = app_server(deployment, workers, opts.ready_timeout, opts.server)
        with serving as (base, server, ready):
            after_load = sample_server(server.pid, workers, opts.server)
            traffic = http_requests(
                base, deployment, names, opts.requests, opts.batch_requests, workers
            )
            after_requests = sample_server(server.pid, workers, opts.server)
        point["servers"][str(workers)] = {
            **ready,
            "after_load": after_load,
            "after_requests": after_requests,
            **traffic,
        }
        log(
            f"{tag}   {workers} worker(s): ready in {ready['all_started_s']:.1f} s, total PSS "
            f"{after_load['total_pss'] / MB:,.0f} -> {after_requests['total_pss'] / MB:,.0f} MB"
        )
    return point


def _sample(n: int, seed: int, size: int = 5000) -> list[int]:
    import numpy as np

    rng = np.random.default_rng(seed + 1)
    return [int(i) for i in rng.choice(n, size=min(n, size), replace=False)]


def _macro_f1(train_output: str) -> float | None:
    # train.py prints a table with a "macro-F1" row; a format change only loses this column.
    match = re.search(r"macro-F1\D*?([01]\.\d+)", train_output)
    return float(match.group(1)) if match else None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


# --------------------------------------------------------------------------- report


def _mb(value: float | None) -> str:
    return "–" if value is None else f"{value / MB:,.0f}"


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def markdown_table(points: list[dict[str, Any]], workers: list[int]) -> str:
    """The results as a markdown table, one row per point."""
    many = [w for w in workers if w != 1]
    header = [
        "categories",
        "features",
        "rows",
        "macro-F1",
        "train s",
        "train peak RSS MB",
        "artifact MB",
        "load s (sync)",
        "RSS MB 1w load→req",
        "PSS MB 1w load→req",
        *(f"PSS MB total {w}w" for w in many),
        "ready s 1w",
        "p50 µs",
        "p99 µs",
        "HTTP p50/p99 ms 1w",
        "batch names/s",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for p in points:
        if "error" in p:
            cells = [str(p["categories"]), f"~{p['target_features']:,}"]
            cells += [f"failed: {p['error']}"] + [""] * (len(header) - 3)
            lines.append("| " + " | ".join(cells) + " |")
            continue
        probe = p.get("probe", {})
        one = p.get("servers", {}).get("1")
        rss = pss = ready = http = "–"
        if one:
            w_load, w_req = one["after_load"]["workers"], one["after_requests"]["workers"]
            if w_load and w_req:
                rss = f"{_mb(w_load[0]['rss'])} → {_mb(w_req[0]['rss'])}"
                pss = f"{_mb(w_load[0]['pss'])} → {_mb(w_req[0]['pss'])}"
            ready = _num(one.get("all_started_s"), ".1f")
            http = f"{_num(one.get('http_p50_ms'), '.2f')} / {_num(one.get('http_p99_ms'), '.2f')}"
        totals = []
        for w in many:
            server = p.get("servers", {}).get(str(w))
            totals.append(_mb(server["after_requests"]["total_pss"]) if server else "–")
        cells = [
            str(p.get("classes", p["categories"])),
            f"{p['features']:,}",
            f"{p['rows']:,}",
            _num(p.get("macro_f1"), ".3f"),
            _num(p.get("train_s"), ".1f"),
            _mb(p.get("train_peak_rss")),
            _num(p["artifact_bytes"] / MB if "artifact_bytes" in p else None, ",.1f"),
            _num(probe.get("load_s"), ".2f"),
            rss,
            pss,
            *totals,
            ready,
            _num(probe.get("single_p50_us"), ",.0f"),
            _num(probe.get("single_p99_us"), ",.0f"),
            http,
            _num(probe.get("batch_names_per_s"), ",.0f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def require_matplotlib() -> None:
    """Fail before the long run, not after it, when --plot cannot be honoured."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit(
            "scaling_bench.py: --plot needs matplotlib, which is not installed in this "
            "environment (pip install matplotlib); run without --plot, or plot from --json"
        ) from None


def plot(points: list[dict[str, Any]], workers: list[int], path: Path) -> None:
    """Training time, artifact/load, memory and latency/throughput against features."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    done = sorted((p for p in points if "error" not in p), key=lambda p: p["features"])
    if not done:
        log("nothing to plot: every point failed")
        return
    x = [p["features"] / 1000 for p in done]
    labels = [f"{p.get('classes', p['categories'])} cat." for p in done]

    def series(get: Callable[[dict[str, Any]], float | None]) -> list[float]:
        values = []
        for p in done:
            try:
                value = get(p)
            except (KeyError, IndexError, TypeError):
                value = None
            values.append(float("nan") if value is None else value)
        return values

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    ax = axes[0][0]
    ax.plot(x, series(lambda p: p["train_s"]), "o-", label="train.py wall time (s)")
    ax.set_ylabel("seconds")
    ax2 = ax.twinx()
    ax2.plot(
        x, series(lambda p: p["train_peak_rss"] / MB), "s--", color="C3", label="peak RSS (MB)"
    )
    ax2.set_ylabel("MB")
    ax.set_title("Training")
    _legend(ax, ax2)

    ax = axes[0][1]
    ax.plot(x, series(lambda p: p["artifact_bytes"] / MB), "o-", label="artifact files (MB)")
    ax.set_ylabel("MB")
    ax2 = ax.twinx()
    ax2.plot(x, series(lambda p: p["probe"]["load_s"]), "s--", color="C3", label="sync() (s)")
    ax2.set_ylabel("seconds")
    ax.set_title("Artifact size and load time")
    _legend(ax, ax2)

    ax = axes[1][0]
    ax.plot(
        x,
        series(lambda p: p["servers"]["1"]["after_requests"]["workers"][0]["rss"] / MB),
        "o-",
        label="1 worker RSS",
    )
    for w in workers:
        ax.plot(
            x,
            series(lambda p, w=w: p["servers"][str(w)]["after_requests"]["total_pss"] / MB),
            "s--",
            label=f"total PSS, {w} worker(s)",
        )
    ax.set_ylabel("MB after requests")
    ax.set_title("Server memory")
    ax.legend(fontsize=8)

    ax = axes[1][1]
    ax.plot(x, series(lambda p: p["probe"]["single_p50_us"]), "o-", label="predict([name]) p50")
    ax.plot(x, series(lambda p: p["probe"]["single_p99_us"]), "o:", label="predict([name]) p99")
    ax.set_ylabel("µs (in-process)")
    ax2 = ax.twinx()
    ax2.plot(
        x, series(lambda p: p["probe"]["batch_names_per_s"]), "s--", color="C3", label="names/s"
    )
    ax2.set_ylabel("names/s, batch of 1,000")
    ax.set_title("Latency and batch throughput")
    _legend(ax, ax2)

    for row in axes:
        for ax in row:
            ax.set_xlabel("TF-IDF features (thousands)")
            ax.grid(alpha=0.3)
            for xi, label in zip(x, labels, strict=True):
                ax.annotate(label, (xi, 0), xycoords=("data", "axes fraction"), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _legend(left: Any, right: Any) -> None:
    handles, labels = left.get_legend_handles_labels()
    more_handles, more_labels = right.get_legend_handles_labels()
    left.legend(handles + more_handles, labels + more_labels, fontsize=8, loc="upper left")


# --------------------------------------------------------------------------- main


def parse_points(text: str) -> list[tuple[int, int]]:
    """`20:50000,133:100000` -> [(20, 50000), (133, 100000)]."""
    points = []
    for item in text.split(","):
        categories, _, features = item.strip().partition(":")
        try:
            points.append((int(categories), int(features)))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad point {item!r}: expected CATEGORIES:FEATURES, e.g. 20:50000"
            ) from None
    return points


def main(argv: list[str] | None = None) -> int:
    """Run every point, print the table, write --json and --plot."""
    parser = argparse.ArgumentParser(
        description="Scaling of training, artifact size, load time, memory and latency "
        "with categories and TF-IDF features, on synthetic catalogues."
    )
    parser.add_argument(
        "--points",
        type=parse_points,
        default=parse_points(DEFAULT_POINTS),
        help=f"comma-separated CATEGORIES:FEATURES (default {DEFAULT_POINTS})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2, 4],
        help="uvicorn worker counts to measure memory with (default: 1 2 4)",
    )
    parser.add_argument("--json", type=Path, help="write every measurement here (JSON)")
    parser.add_argument("--plot", type=Path, help="draw the curves into this PNG (matplotlib)")
    parser.add_argument(
        "--seed", type=int, default=synthetic.DEFAULT_SEED, help="generator seed (default 0)"
    )
    parser.add_argument(
        "--calibrate",
        type=int,
        default=1,
        help="generator calibration rounds, each a vectoriser fit (default %(default)s)",
    )
    parser.add_argument(
        "--train-timeout",
        type=float,
        default=4 * 3600,
        help="seconds train.py may take per point (default %(default)s)",
    )
    parser.add_argument(
        "--load-timeout",
        type=float,
        default=1800,
        help="seconds the load-and-latency process may take (default %(default)s)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=900,
        help="seconds for all uvicorn workers to load (default %(default)s)",
    )
    parser.add_argument(
        "--latency-calls",
        type=int,
        default=2000,
        help="timed in-process predict([name]) calls (default %(default)s)",
    )
    parser.add_argument(
        "--warmup-calls",
        type=int,
        default=200,
        help="untimed calls before them, on other names (default %(default)s)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="names per batch call (default %(default)s)"
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=500,
        help="single-name HTTP requests per server before the second memory sample "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--batch-requests",
        type=int,
        default=5,
        help="1,000-name HTTP batch requests per server (default %(default)s)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=30,
        help="seconds between progress lines of a long stage (default %(default)s)",
    )
    parser.add_argument(
        "--algorithm",
        choices=ALGORITHMS,
        help="train.py --algorithm for every point (default: train.py's default); "
        "sgd_log_loss trains the large points in minutes instead of hours",
    )
    add_precision_option(parser)
    parser.add_argument(
        "--server",
        choices=("uvicorn", "gunicorn"),
        default="uvicorn",
        help="uvicorn --workers N (fresh interpreters), or gunicorn with app/gunicorn_conf.py "
        "(workers forked from a preloaded master) (default %(default)s)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep each point's deployment (data, database, models, logs) under this "
        "directory instead of a deleted temporary one",
    )
    args = parser.parse_args(argv)
    if args.plot is not None:
        require_matplotlib()
    opts = Options(
        workers=sorted(set(args.workers)),
        seed=args.seed,
        calibrate=args.calibrate,
        train_timeout=args.train_timeout,
        load_timeout=args.load_timeout,
        ready_timeout=args.ready_timeout,
        latency_calls=args.latency_calls,
        warmup_calls=args.warmup_calls,
        batch_size=args.batch_size,
        requests=args.requests,
        batch_requests=args.batch_requests,
        heartbeat=args.heartbeat,
        server=args.server,
        algorithm=args.algorithm,
        precision=args.precision,
    )
    log(f"{len(args.points)} point(s), workers {opts.workers}, {os.cpu_count()} cores")
    points: list[dict[str, Any]] = []
    for categories, target in args.points:
        if args.workdir is not None:
            workdir = args.workdir / f"{categories}x{target}"
            if workdir.exists():
                shutil.rmtree(workdir)
            workdir.mkdir(parents=True)
            context: Any = _existing(workdir)
        else:
            context = tempfile.TemporaryDirectory(prefix=f"scaling-{categories}x{target}-")
        with context as directory:
            try:
                points.append(run_point(categories, target, Path(directory), opts))
            except Exception as exc:  # one broken point must not lose the others' results
                log(f"[{categories}:{target}] failed: {type(exc).__name__}: {exc}")
                points.append(
                    {"categories": categories, "target_features": target, "error": str(exc)}
                )
        if args.json is not None:
            args.json.write_text(
                json.dumps({"machine_cores": os.cpu_count(), "points": points}, indent=2)
            )
    print(markdown_table(points, opts.workers))
    if args.json is not None:
        log(f"wrote {args.json}")
    if args.plot is not None:
        plot(points, opts.workers, args.plot)
        log(f"wrote {args.plot}")
    return 0 if all("error" not in p for p in points) else 1


@contextmanager
def _existing(path: Path) -> Iterator[Path]:
    yield path


if __name__ == "__main__":
    raise SystemExit(main())
