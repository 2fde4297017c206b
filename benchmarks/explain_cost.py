"""What `"explain": true` costs per name on the fast path (issue 13, item 4: at most +20 µs).

Fits the default pipeline on a dataset's 80 % split, builds its fast scorer and
times `FastScorer.score_one` (what POST /predict/ runs) against
`FastScorer.explain_one` (what it runs with `explain`), name by name over the
20 % split, alternating which goes first, with warm word caches and the garbage
collector off. Prints the medians over passes and their difference.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/explain_cost.py
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.ml.dataset import read_csv  # noqa: E402
from app.ml.evaluation import split_holdout  # noqa: E402
from app.ml.fast_path import FastScorer  # noqa: E402
from app.ml.pipeline import build_pipeline  # noqa: E402
from benchmarks.model_comparison import DATASETS_DIR, load_dataset  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "products.csv"


def _pass(names: Sequence[str], calls: Sequence[Callable[[str], object]]) -> list[float]:
    """Seconds per name of each call, interleaved name by name."""
    totals = [0.0] * len(calls)
    for i, name in enumerate(names):
        for j in range(len(calls)):
            k = (i + j) % len(calls)
            started = time.perf_counter()
            calls[k](name)
            totals[k] += time.perf_counter() - started
    return [t / len(names) for t in totals]


def measure(label: str, texts: list[str], labels: list[str], passes: int) -> None:
    x_train, x_test, y_train, _ = split_holdout(texts, labels, 0.2, 42)
    scorer = FastScorer.from_pipeline(build_pipeline().fit(x_train, y_train))
    names = x_test[:3000]
    calls = [scorer.score_one, scorer.explain_one]
    _pass(names, calls)  # warm caches and the explainer's term list
    gc.disable()
    try:
        runs = [_pass(names, calls) for _ in range(passes)]
    finally:
        gc.enable()
    plain = statistics.median(r[0] for r in runs) * 1e6
    explained = statistics.median(r[1] for r in runs) * 1e6
    extra = statistics.median((r[1] - r[0]) * 1e6 for r in runs)
    print(
        f"| {label} | {len(scorer.classes)} | {plain:.1f} | {explained:.1f} | {extra:+.1f} |",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passes", type=int, default=7, help="timed passes (default: %(default)s)")
    args = parser.parse_args(argv)
    print("| data | categories | score_one µs | explain_one µs | explain costs (median) µs |")
    print("|---|---:|---:|---:|---:|")
    shipped = read_csv(SHIPPED)
    measure("shipped data/products.csv", shipped.texts, shipped.labels, args.passes)
    for name in ("instacart_department.csv", "bigbasket_category_with_brand.csv"):
        path = DATASETS_DIR / name
        if not path.exists():
            print(f"skipped {name}: not found under {DATASETS_DIR}")
            continue
        texts, labels = load_dataset(path)
        measure(name, texts, labels, args.passes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
