"""Quality guard on real data: the default pipeline must hold the baseline and stay calibrated.

Runs on a seeded 40 % sample of each shared dataset (about 8 s for both on one
core) and skips cleanly where ../shared/datasets is absent. Full-data numbers
are in docs/model.md; ``python benchmarks/model_comparison.py`` reproduces them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from app.ml.algorithms import DEFAULT_ALGORITHM
from app.ml.evaluation import evaluate, split_holdout
from app.ml.fast_path import FastScorer
from app.ml.pipeline import build_pipeline

DATASETS_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SAMPLE_FRACTION = 0.4
# ECE measured on exactly these samples on 2026-11-24 (docs/model.md, "quality
# guard") is next to each bound. The bounds sit ~0.01 above, because the test part
# is only ~2,000-3,900 rows, where a solver or BLAS change moves a 15-bin ECE by a
# few thousandths. 40 % rather than 20 %: at 20 % BigBasket's 985 test rows gave
# ECE 0.032 (0.010 on full data), too noisy for a useful bound.
ECE_BOUNDS = {
    "instacart_department.csv": 0.035,  # measured 0.0267 (full data 0.0230)
    "bigbasket_category_with_brand.csv": 0.025,  # measured 0.0142 (full data 0.0097)
}


def _sample(path: Path) -> tuple[list[str], list[str]]:
    if not path.exists():
        pytest.skip(f"shared dataset not found at {path}")
    seen: set[str] = set()
    texts: list[str] = []
    labels: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            # Duplicates dropped, first label kept: the benchmark protocol.
            if row["product_name"] in seen:
                continue
            seen.add(row["product_name"])
            texts.append(row["product_name"])
            labels.append(row["category"])
    rng = np.random.default_rng(42)
    keep = np.sort(rng.choice(len(texts), size=int(len(texts) * SAMPLE_FRACTION), replace=False))
    return [texts[i] for i in keep], [labels[i] for i in keep]


@pytest.mark.parametrize("dataset", sorted(ECE_BOUNDS))
def test_default_pipeline_holds_baseline_and_calibration(dataset: str) -> None:
    texts, labels = _sample(DATASETS_DIR / dataset)
    x_tr, x_te, y_tr, y_te = split_holdout(texts, labels)

    baseline = Pipeline(
        [
            ("features", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            ("clf", LinearSVC(C=1.0)),
        ]
    ).fit(x_tr, y_tr)
    baseline_f1 = float(f1_score(y_te, baseline.predict(x_te), average="macro"))

    pipe = build_pipeline(DEFAULT_ALGORITHM).fit(x_tr, y_tr)
    metrics = evaluate(pipe, x_te, y_te)

    assert metrics["macro_f1"] >= baseline_f1 - 0.005, (metrics["macro_f1"], baseline_f1)
    assert metrics["ece"] <= ECE_BOUNDS[dataset], metrics["ece"]
    assert set(metrics["per_class"]) == set(labels)

    # The fast path must agree with the pipeline on real, messy names too.
    scorer = FastScorer.from_pipeline(pipe)
    expected = pipe.predict_proba(x_te)
    np.testing.assert_allclose(scorer.predict_proba_many(x_te), expected, rtol=0, atol=1e-9)
    one = np.vstack([scorer.predict_proba_one(name) for name in x_te[:500]])
    np.testing.assert_allclose(one, expected[:500], rtol=0, atol=1e-9)
