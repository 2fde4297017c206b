"""Latency and throughput of FastScorer vs ``pipeline.predict_proba`` on a real dataset."""

from __future__ import annotations

import argparse
import os
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

import joblib
import numpy as np

# Allow `python benchmarks/fast_path_bench.py` from the repo root without installing.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.ml.algorithms import ALGORITHMS, DEFAULT_ALGORITHM  # noqa: E402
from app.ml.evaluation import split_holdout  # noqa: E402
from app.ml.fast_path import FastScorer  # noqa: E402
from app.ml.pipeline import build_pipeline  # noqa: E402
from app.ml.preprocessing import analyze  # noqa: E402
from benchmarks.model_comparison import load_dataset  # noqa: E402

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _percentiles(samples: list[float]) -> tuple[float, float]:
    arr = np.asarray(samples) * 1e6
    return float(np.median(arr)), float(np.percentile(arr, 99))


def split_categories(texts: list[str], labels: list[str], parts: int) -> list[str]:
    """Each category cut into up to `parts` by its names' first word (rare pieces stay whole).

    No shared catalog has ~130 categories; this gives a model with that many
    outputs over a real catalog's names, which is what scoring cost depends on.
    """
    if parts <= 1:
        return labels

    def piece(text: str, label: str) -> str:
        words = analyze(text)
        return f"{label}/{zlib.crc32(words[0].encode()) % parts if words else 0}"

    pieces = [piece(t, label) for t, label in zip(texts, labels, strict=True)]
    sizes = Counter(pieces)
    return [p if sizes[p] >= 30 else label for p, label in zip(pieces, labels, strict=True)]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a small report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default=str(DATASETS / "instacart_department.csv"))
    parser.add_argument("--algorithm", default=DEFAULT_ALGORITHM, choices=ALGORITHMS)
    parser.add_argument("--calls", type=int, default=2000, help="single-item calls to time")
    parser.add_argument("--batch", type=int, default=1000, help="batch size for throughput")
    parser.add_argument("--repeats", type=int, default=5, help="batch repetitions (best kept)")
    parser.add_argument(
        "--split-categories", type=int, default=1, help="cut each category into this many"
    )
    parser.add_argument("--model-cache", type=Path, help="fitted pipeline kept here between runs")
    args = parser.parse_args(argv)

    # One core, as the service would get per worker.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    texts, labels = load_dataset(Path(args.dataset))
    labels = split_categories(texts, labels, args.split_categories)
    x_tr, x_te, y_tr, _ = split_holdout(texts, labels)
    t0 = time.perf_counter()
    if args.model_cache is not None and args.model_cache.exists():
        pipe = joblib.load(args.model_cache)
    else:
        pipe = build_pipeline(args.algorithm).fit(x_tr, y_tr)
        if args.model_cache is not None:
            joblib.dump(pipe, args.model_cache)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    scorer = FastScorer.from_pipeline(pipe)
    build_s = time.perf_counter() - t0

    names = [x_te[i % len(x_te)] for i in range(args.calls)]
    expected = pipe.predict_proba(x_te)
    max_diff = float(np.abs(scorer.predict_proba_many(x_te) - expected).max())
    max_diff_one = max(
        float(np.abs(scorer.predict_proba_one(n) - expected[i]).max()) for i, n in enumerate(x_te)
    )

    slow: list[float] = []
    fast: list[float] = []
    for name in names:
        t = time.perf_counter()
        pipe.predict_proba([name])
        slow.append(time.perf_counter() - t)
    for name in names:
        t = time.perf_counter()
        scorer.predict_proba_one(name)
        fast.append(time.perf_counter() - t)
    # Cold: the per-word n-gram cache emptied before every call, as for names
    # made only of words the worker has not seen yet.
    cold: list[float] = []
    for name in names:
        scorer._features.clear_word_cache()
        t = time.perf_counter()
        scorer.predict_proba_one(name)
        cold.append(time.perf_counter() - t)
    slow_med, slow_p99 = _percentiles(slow)
    fast_med, fast_p99 = _percentiles(fast)
    cold_med, cold_p99 = _percentiles(cold)

    batch = [x_te[i % len(x_te)] for i in range(args.batch)]
    best_fast = best_slow = float("inf")
    for _ in range(args.repeats):
        t = time.perf_counter()
        scorer.predict_proba_many(batch)
        best_fast = min(best_fast, time.perf_counter() - t)
        t = time.perf_counter()
        pipe.predict_proba(batch)
        best_slow = min(best_slow, time.perf_counter() - t)

    out = sys.stdout.write
    out(f"dataset: {Path(args.dataset).name}  algorithm: {args.algorithm}\n")
    out(f"fit {fit_s:.1f} s, FastScorer.from_pipeline {build_s * 1e3:.0f} ms\n")
    out(
        f"max |fast - pipeline| on {len(x_te)} hold-out rows: batch {max_diff:.2e}, "
        f"single {max_diff_one:.2e}\n"
    )
    out(f"single item over {args.calls} calls (microseconds):\n")
    out(f"  pipeline.predict_proba([name]): median {slow_med:8.1f}  p99 {slow_p99:8.1f}\n")
    out(f"  FastScorer.predict_proba_one:   median {fast_med:8.1f}  p99 {fast_p99:8.1f}\n")
    out(f"  speed-up: median {slow_med / fast_med:.1f}x  p99 {slow_p99 / fast_p99:.1f}x\n")
    out(
        f"  fast path, word cache cold:     median {cold_med:8.1f}  p99 {cold_p99:8.1f}"
        f"  (speed-up {slow_med / cold_med:.1f}x / {slow_p99 / cold_p99:.1f}x)\n"
    )
    out(f"batch of {args.batch} (best of {args.repeats}):\n")
    out(f"  pipeline.predict_proba:         {args.batch / best_slow:10.0f} items/s\n")
    out(f"  FastScorer.predict_proba_many:  {args.batch / best_fast:10.0f} items/s\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
