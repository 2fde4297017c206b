"""Bulk scoring end to end on the shipped model: `POST /predictions/bulk` and `app.cli score`.

    .venv/bin/python benchmarks/bulk_score.py --cores 2              # 1,000,000 rows, both paths
    .venv/bin/python benchmarks/bulk_score.py --rows 50000 --cores 2  # a quick look
    .venv/bin/python benchmarks/bulk_score.py --path cli --cores 1    # today's one-core path

Trains the model `make run` trains (train.py on the shipped data/products.csv) in a
throw-away deployment, writes a CSV of `--rows` names cycling through `--distinct`
distinct names from scripts/generate_products.py (another seed than the shipped
data's, so most names are new to the model), then times, with BULK_CORES=`--cores`:

- the API path: a real uvicorn worker; from the start of the upload of the file to
  the end of the download of `result.csv` (upload, the job's process start and model
  load, scoring, download), polling the job's status every 0.1 s;
- the CLI path: `python -m app.cli score IN OUT --cores N` in a fresh process, as a
  user runs it (start-up and model load included).

Memory is the job's (or the command's) process and its worker processes together,
sampled every 0.1 s from /proc/<pid>/smaps_rollup: peak of the summed RSS, which
counts the pages the workers share with their parent once per process, and peak
of the summed PSS, which splits each shared page between the processes sharing it
(the memory the job really takes). Both outputs are checked to be byte-identical.
Linux only; run it on an idle machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.config import all_cpus_but_one  # noqa: E402
from app.db.database import open_database  # noqa: E402
from app.ml.dataset import SHIPPED_DATASET, read_csv  # noqa: E402
from app.ml.training import fit_model  # noqa: E402
from app.services.models import ModelRegistry  # noqa: E402
from benchmarks.loadgen import memory_kib, prepare_deployment, token, uvicorn_server  # noqa: E402
from scripts.generate_products import generate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The shipped data is generated with seed 42; names of another seed are unseen ones.
NAME_SEED = 7
SAMPLE_SECONDS = 0.1
JOB_TIMEOUT_SECONDS = 3600.0


def install_shipped_model(database_url: str, model_dir: Path) -> str:
    """Train on the shipped data and activate the version, as train.py would (for
    benchmarks/distributed_score.py, which needs no server)."""
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


def _processes() -> dict[int, tuple[int, str]]:
    """Every process: pid -> (parent pid, command line)."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        table[int(entry.name)] = (int(stat.rsplit(") ", 1)[1].split()[1]), command)
    return table


@dataclass
class Peak:
    """The largest summed RSS and PSS seen, and the most processes seen at once."""

    rss_kib: int = 0
    pss_kib: int = 0
    processes: int = 0


class MemorySampler:
    """Samples, from a thread, the processes whose command line holds `marker` (a job id)
    or whose parent is `root` (the command's workers), plus `root` itself."""

    def __init__(self, *, marker: str | None = None, root: int | None = None) -> None:
        self._marker = marker
        self._root = root
        self.peak = Peak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _pids(self) -> list[int]:
        table = _processes()
        return [
            pid
            for pid, (parent, command) in table.items()
            if (self._marker is not None and self._marker in command)
            or (self._root is not None and self._root in (pid, parent))
        ]

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            samples = [m for m in (memory_kib(pid) for pid in self._pids()) if m is not None]
            self.peak.rss_kib = max(self.peak.rss_kib, sum(rss for rss, _ in samples))
            self.peak.pss_kib = max(self.peak.pss_kib, sum(pss for _, pss in samples))
            self.peak.processes = max(self.peak.processes, len(samples))


def run_api(
    env: dict[str, str], source: Path, destination: Path
) -> tuple[float, dict[str, float], Peak]:
    """Upload, wait, download; returns the seconds end to end, the steps, and the job's peak."""
    with uvicorn_server(env) as base:
        headers = {"Authorization": f"Bearer {token(base, 'predict')}"}
        with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
            started = time.perf_counter()
            with source.open("rb") as upload:
                response = client.post(
                    "/predictions/bulk", files={"file": ("names.csv", upload, "text/csv")}
                )
            response.raise_for_status()
            uploaded = time.perf_counter()
            job = response.json()
            with MemorySampler(marker=job["job_id"]) as sampler:
                deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
                while job["status"] not in ("succeeded", "failed"):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the job did not finish: {job}")
                    time.sleep(SAMPLE_SECONDS)
                    job = client.get(job["status_url"]).raise_for_status().json()
            if job["status"] != "succeeded":
                raise RuntimeError(f"the job failed: {job['error']}")
            finished = time.perf_counter()
            with destination.open("wb") as out, client.stream("GET", job["result_url"]) as result:
                result.raise_for_status()
                for block in result.iter_bytes(1024 * 1024):
                    out.write(block)
            done = time.perf_counter()
    steps = {
        "upload": uploaded - started,
        "job (start, load, score)": finished - uploaded,
        "download": done - finished,
        "job's own rows/s": float(job["rows_per_second"]),
    }
    return done - started, steps, sampler.peak


def run_cli(
    env: dict[str, str], workdir: Path, source: Path, destination: Path, cores: int, chunk_rows: int
) -> tuple[float, float, str, Peak]:
    """The command in a fresh process; returns its wall and CPU seconds, its output, its peak."""
    command = [sys.executable, "-m", "app.cli", "score", str(source), str(destination)]
    command += ["--cores", str(cores), "--chunk-rows", str(chunk_rows)]
    stdout, stderr = workdir / "stdout.txt", workdir / "stderr.txt"
    with stdout.open("w") as out, stderr.open("w") as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=err)
        with MemorySampler(root=child.pid) as sampler:
            # wait4, not Popen.wait: it also returns the child's resource usage, its
            # workers' included once it has waited for them (the executor joins them).
            _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"the CLI failed ({child.returncode}): {stderr.read_text()}")
    return wall, usage.ru_utime + usage.ru_stime, stdout.read_text().strip(), sampler.peak


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


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
        "--cores",
        type=int,
        default=all_cpus_but_one(),
        help="BULK_CORES for the job and --cores for the CLI (default: %(default)s, all CPUs "
        "but one)",
    )
    parser.add_argument(
        "--chunk-rows", type=int, default=4096, help="the CLI's --chunk-rows (default: 4096)"
    )
    parser.add_argument(
        "--path", choices=("api", "cli", "both"), default="both", help="what to time"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bulk-score-") as folder:
        workdir = Path(folder)
        started = time.perf_counter()
        env = prepare_deployment(
            workdir,
            {
                "BULK_CORES": str(args.cores),
                "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
                # The status polls would fill the terminal with access lines.
                "LOG_LEVEL": "WARNING",
            },
        )
        (workdir / "metrics").mkdir()
        print(f"trained the shipped model in {time.perf_counter() - started:.1f} s")
        source = workdir / "names.csv"
        started = time.perf_counter()
        write_names(source, args.rows, min(args.distinct, args.rows))
        print(
            f"wrote {args.rows:,} names ({source.stat().st_size / 1e6:.1f} MB) "
            f"in {time.perf_counter() - started:.1f} s; {args.cores} cores of "
            f"{len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}"
        )
        outputs: list[Path] = []
        if args.path in ("api", "both"):
            destination = workdir / "scored-api.csv"
            total, steps, peak = run_api(env, source, destination)
            outputs.append(destination)
            print(f"\nAPI, POST /predictions/bulk with BULK_CORES={args.cores}")
            print(
                f"  end to end (upload to result):  {total:.1f} s, {args.rows / total:,.0f} rows/s"
            )
            for step, value in steps.items():
                unit = "" if step.endswith("rows/s") else " s"
                print(f"  {step + ':':<32}{value:,.1f}{unit}")
            print(f"  job processes at once:          {peak.processes}")
            print(f"  peak RSS, job and workers:      {_mib(peak.rss_kib)} (shared pages in each)")
            print(f"  peak PSS, job and workers:      {_mib(peak.pss_kib)}")
        if args.path in ("cli", "both"):
            destination = workdir / "scored-cli.csv"
            wall, cpu, said, peak = run_cli(
                env, workdir, source, destination, args.cores, args.chunk_rows
            )
            outputs.append(destination)
            print(f"\nCLI, python -m app.cli score --cores {args.cores}")
            print(f"  {said}")
            print(f"  process wall time:              {wall:.1f} s, {args.rows / wall:,.0f} rows/s")
            print(
                f"  CPU time, workers included:     {cpu:.1f} s ({cpu / wall:.2f} cores on average)"
            )
            print(f"  processes at once:              {peak.processes}")
            print(f"  peak RSS, command and workers:  {_mib(peak.rss_kib)} (shared pages in each)")
            print(f"  peak PSS, command and workers:  {_mib(peak.pss_kib)}")
        rows = sum(1 for _ in outputs[0].open(encoding="utf-8")) - 1
        print(f"\nrows in / out: {args.rows:,} / {rows:,}")
        if len(outputs) == 2 and outputs[0].read_bytes() != outputs[1].read_bytes():
            print("the API's and the CLI's results differ", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
