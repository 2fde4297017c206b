"""Quality guard on real data: the default pipeline must hold the baseline and stay calibrated."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from app.ml.evaluation import evaluate, split_holdout
from app.ml.fast_path import FastScorer
from app.ml.pipeline import DEFAULT_ALGORITHM, build_pipeline

DATASETS_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets"
INSTACART = DATASETS_DIR / "instacart_department.csv"
SAMPLE_FRACTION = 0.2
# Measured 0.0xx on this sample (see docs/model.md); the bound leaves headroom for
# solver differences across platforms without hiding a calibration regression.
ECE_BOUND = 0.04


def _sample() -> tuple[list[str], list[str]]:
    if not INSTACART.exists():
        pytest.skip(f"shared datasets not found at {DATASETS_DIR}")
    seen: set[str] = set()
    texts: list[str] = []
    labels: list[str] = []
    with INSTACART.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["product_name"] in seen:
                continue
            seen.add(row["product_name"])
            texts.append(row["product_name"])
            labels.append(row["category"])
    rng = np.random.default_rng(42)
    keep = np.sort(rng.choice(len(texts), size=int(len(texts) * SAMPLE_FRACTION), replace=False))
    return [texts[i] for i in keep], [labels[i] for i in keep]


def test_default_pipeline_holds_baseline_and_calibration() -> None:
    texts, labels = _sample()
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
    assert metrics["ece"] <= ECE_BOUND, metrics["ece"]
    assert set(metrics["per_class"]) == set(labels)

    # The fast path must agree with the pipeline on real, messy names too.
    scorer = FastScorer.from_pipeline(pipe)
    np.testing.assert_allclose(
        scorer.predict_proba_many(x_te), pipe.predict_proba(x_te), rtol=0, atol=1e-9
    )
