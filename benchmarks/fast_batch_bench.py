"""CPU time per name of FastScorer.score_many in chunks (as a bulk job scores) and of score_one.

CPU time rather than wall time: on a shared machine the process's own time
varies far less. Run it from two checkouts in turn to compare them (issue 16):

    python benchmarks/fast_batch_bench.py --dataset data/products.csv --generated 20000
    python /tmp/before/benchmarks/fast_batch_bench.py --dataset data/products.csv --generated 20000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import joblib
import numpy as np

# Allow `python benchmarks/fast_batch_bench.py` from any checkout without installing.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.ml.algorithms import DEFAULT_ALGORITHM  # noqa: E402
from app.ml.evaluation import split_holdout  # noqa: E402
from app.ml.fast_path import FastScorer  # noqa: E402
from app.ml.pipeline import build_pipeline  # noqa: E402
from benchmarks.fast_path_bench import split_categories  # noqa: E402
from benchmarks.model_comparison import load_dataset  # noqa: E402
from scripts.generate_products import generate  # noqa: E402


def _cpu_per_name(scorer: FastScorer, names: list[str], chunk: int) -> float:
    start = time.process_time()
    for i in range(0, len(names), chunk):
        scorer.score_many(names[i : i + chunk])
    return (time.process_time() - start) / len(names) * 1e6


def _cpu_per_call(scorer: FastScorer, names: list[str]) -> float:
    start = time.process_time()
    for name in names:
        scorer.score_one(name)
    return (time.process_time() - start) / len(names) * 1e6


def main(argv: list[str] | None = None) -> int:
    """Fit (or load) the default pipeline, then time its fast scorer; one JSON line out."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--split-categories", type=int, default=1)
    parser.add_argument("--model-cache", type=Path, help="fitted pipeline kept here between runs")
    parser.add_argument(
        "--generated", type=int, default=0, help="score this many generated names, not hold-out"
    )
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--single", type=int, default=3000, help="names timed with score_one")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    texts, labels = load_dataset(args.dataset)
    labels = split_categories(texts, labels, args.split_categories)
    x_tr, x_te, y_tr, _ = split_holdout(texts, labels)
    if args.model_cache is not None and args.model_cache.exists():
        pipe = joblib.load(args.model_cache)
    else:
        pipe = build_pipeline(DEFAULT_ALGORITHM).fit(x_tr, y_tr)
        if args.model_cache is not None:
            joblib.dump(pipe, args.model_cache)
    names = [r.product_name for r in generate(args.generated, 7)[0]] if args.generated else x_te
    scorer = FastScorer.from_pipeline(pipe)
    scorer.score_many(names[:64])
    scorer.score_one(names[0])

    # Cold: the first pass over the names with the per-word cache emptied.
    scorer._features.clear_word_cache()
    cold = _cpu_per_name(scorer, names, args.chunk)
    warm = min(_cpu_per_name(scorer, names, args.chunk) for _ in range(args.repeats))
    single = min(_cpu_per_call(scorer, names[: args.single]) for _ in range(args.repeats))
    sample = names[:3000]
    diff = np.abs(scorer.predict_proba_many(sample) - pipe.predict_proba(sample)).max()
    report = {
        "outputs": int(len(scorer.classes)),
        "names": len(names),
        "score_many_cold_us": round(cold, 2),
        "score_many_warm_us": round(warm, 2),
        "score_one_us": round(single, 2),
        "max_abs_diff": float(diff),
    }
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
