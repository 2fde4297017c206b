"""How far float32 weights move a stored scorer from its pipeline (SCORER_PRECISION).

    python benchmarks/precision_check.py [--data CSV ...] [--algorithm NAME] [--json OUT]

For each dataset (default: the shipped data/products.csv and the real catalogues
in ../shared/datasets/ that are present), fit the pipeline exactly as train.py
does, derive its exact fast scorer and the float32 twin `SCORER_PRECISION=float32`
would store, and score every row, training and hold-out, with all three. Prints
per dataset: rows, classes, features, the largest |scorer - pipeline| for each
precision over all rows, how many rows the float32 weights would move to another
category (training and hold-out separately), and the bytes of the weights each way.

Training refuses float32 for a version when a row changes category or the
difference exceeds FLOAT32_TOLERANCE; this benchmark shows how close real
catalogues come to either limit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.ml.algorithms import ALGORITHMS, DEFAULT_ALGORITHM  # noqa: E402
from app.ml.dataset import read_csv  # noqa: E402
from app.ml.fast_path import FLOAT32_TOLERANCE, FastScorer  # noqa: E402
from app.ml.training import fit_model  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
DEFAULT_DATA = [
    ROOT / "data" / "products.csv",
    SHARED / "instacart_department.csv",
    SHARED / "bigbasket_category_with_brand.csv",
]


def measure(path: Path, algorithm: str) -> dict[str, Any]:
    """Fit on `path` and compare both precisions with the pipeline on every row."""
    dataset = read_csv(path)
    started = time.perf_counter()
    trained = fit_model(dataset, algorithm=algorithm)
    fit_s = time.perf_counter() - started
    exact = FastScorer.from_pipeline(trained.pipeline)
    parts = exact.parts
    rounded = FastScorer(dataclasses.replace(parts, weights=parts.weights.astype(np.float32)))
    texts = list(dataset.texts)
    truth = trained.pipeline.predict_proba(texts)
    served64 = exact.predict_proba_many(texts)
    served32 = rounded.predict_proba_many(texts)
    moved = served32.argmax(axis=1) != served64.argmax(axis=1)
    held_out = set(trained.holdout_texts)
    in_training = np.fromiter((t not in held_out for t in texts), dtype=bool, count=len(texts))
    worst32 = float(np.abs(served32 - truth).max())
    return {
        "data": str(path),
        "rows": len(texts),
        "classes": int(parts.classes.shape[0]),
        "features": int(parts.weights.shape[0]),
        "outputs": int(parts.weights.shape[1]),
        "algorithm": algorithm,
        "fit_s": round(fit_s, 1),
        "max_abs_diff_float64": float(np.abs(served64 - truth).max()),
        "max_abs_diff_float32": worst32,
        "moved_training_rows": int(np.count_nonzero(moved & in_training)),
        "moved_holdout_rows": int(np.count_nonzero(moved & ~in_training)),
        "weights_bytes_float64": int(parts.weights.astype(np.float64).nbytes),
        "weights_bytes_float32": int(parts.weights.astype(np.float32).nbytes),
        "float32_would_be_stored": bool(not moved.any() and worst32 <= FLOAT32_TOLERANCE),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        nargs="+",
        metavar="CSV",
        help="product_name,category CSVs (default: shipped data and ../shared/datasets)",
    )
    parser.add_argument(
        "--algorithm",
        choices=ALGORITHMS,
        default=DEFAULT_ALGORITHM,
        help="train.py --algorithm (default %(default)s)",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the rows here")
    args = parser.parse_args(argv)
    paths = args.data or [p for p in DEFAULT_DATA if p.is_file()]
    results = []
    for path in paths:
        print(f"fitting {path.name} ({args.algorithm}) ...", file=sys.stderr, flush=True)
        results.append(measure(path, args.algorithm))
    print(
        "| data | rows | classes | features | max diff float64 | max diff float32 "
        "| rows moved (train / hold-out) | weights float64 → float32 | float32 kept |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        print(
            f"| {Path(r['data']).name} | {r['rows']:,} | {r['classes']} | {r['features']:,} "
            f"| {r['max_abs_diff_float64']:.1e} | {r['max_abs_diff_float32']:.1e} "
            f"| {r['moved_training_rows']} / {r['moved_holdout_rows']} "
            f"| {r['weights_bytes_float64'] / 2**20:.1f} → "
            f"{r['weights_bytes_float32'] / 2**20:.1f} MiB "
            f"| {'yes' if r['float32_would_be_stored'] else 'no'} |"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
