"""Reproduce the model comparison and normalisation ablation tables in docs/model.md.

Every model is trained on the same 80/20 stratified split (seed 42) of each shared
dataset, with duplicate names dropped (first label kept), and scored on the 20 %.
The ablation is scored on a validation split carved out of the training 80 %
(seed 7), never on the test rows.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from nltk.stem import PorterStemmer
from sklearn.base import clone
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.ml.algorithms import ALGORITHMS, DEFAULT_ALGORITHM  # noqa: E402
from app.ml.calibration import CalibratedLinearSVC  # noqa: E402
from app.ml.evaluation import expected_calibration_error, split_holdout  # noqa: E402
from app.ml.pipeline import build_pipeline  # noqa: E402
from app.ml.preprocessing import normalize_product_name, tokenize  # noqa: E402

DATASETS_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DATASETS = ("instacart_department.csv", "bigbasket_category_with_brand.csv")

_STEMMER = PorterStemmer()
_DIGITS = re.compile(r"\d")


def load_dataset(path: Path) -> tuple[list[str], list[str]]:
    """Read product_name,category rows, keeping the first label of each distinct name."""
    seen: set[str] = set()
    texts: list[str] = []
    labels: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            name = row["product_name"]
            if name in seen:
                continue
            seen.add(name)
            texts.append(name)
            labels.append(row["category"])
    return texts, labels


def baseline_pipeline() -> Pipeline:
    """The README baseline: plain word 1-2 TF-IDF (sublinear) + LinearSVC(C=1)."""
    return Pipeline(
        [
            ("features", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            ("clf", LinearSVC(C=1.0)),
        ]
    )


def _candidates() -> dict[str, Callable[[], Pipeline]]:
    """Name -> factory of every model in the comparison table."""
    models: dict[str, Callable[[], Pipeline]] = {"baseline (README)": baseline_pipeline}
    for algorithm in ALGORITHMS:
        label = f"{algorithm} (default)" if algorithm == DEFAULT_ALGORITHM else algorithm
        models[label] = lambda a=algorithm: build_pipeline(a)
    # Calibration variants of the default LinearSVC (same C, same 5 folds).
    models["linear_svc + OOF matrix map (previous default)"] = lambda: build_pipeline(
        DEFAULT_ALGORITHM, {"clf__calibration": "matrix", "clf__C": 0.5}
    )
    models["linear_svc + OOF vector scaling"] = lambda: build_pipeline(
        DEFAULT_ALGORITHM, {"clf__calibration": "vector"}
    )
    models["linear_svc + OOF temperature"] = lambda: build_pipeline(
        DEFAULT_ALGORITHM, {"clf__calibration": "temperature"}
    )
    return models


def _artifact_bytes(model: Any) -> int:
    buf = io.BytesIO()
    joblib.dump(model, buf)
    return buf.tell()


def score_model(
    model: Pipeline, x_tr: list[str], y_tr: list[str], x_te: list[str], y_te: list[str]
) -> dict[str, float]:
    """Fit on the training rows and return accuracy, macro-F1, ECE, fit time, artifact size."""
    t0 = time.perf_counter()
    model.fit(x_tr, y_tr)
    fit_s = time.perf_counter() - t0
    ece = float("nan")
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(x_te)
        pred = np.asarray(model.classes_)[proba.argmax(axis=1)]
        ece = expected_calibration_error(y_te, proba, model.classes_)
    else:
        pred = model.predict(x_te)
    return {
        "accuracy": float(accuracy_score(y_te, pred)),
        "macro_f1": float(f1_score(y_te, pred, average="macro")),
        "ece": ece,
        "fit_s": fit_s,
        "size_mb": _artifact_bytes(model) / 1e6,
    }


# --- normalisation ablation variants (module level so they stay picklable) ---
def stem_tokenize(text: str) -> list[str]:
    """Tokenise then Porter-stem (data-free NLTK stemmer)."""
    return [_STEMMER.stem(t) for t in tokenize(text)]


def stopword_tokenize(text: str) -> list[str]:
    """Tokenise then drop sklearn's English stop-words."""
    return [t for t in tokenize(text) if t not in ENGLISH_STOP_WORDS]


def digit_shape_normalize(text: str) -> str:
    """Normalise then map every digit to 0, so 250 and 330 share features."""
    return _DIGITS.sub("0", normalize_product_name(text))


def _ablation_variants() -> dict[str, dict[str, Any]]:
    return {
        "default normalisation": {},
        "sklearn default lowercasing only (no custom preprocessor)": {
            "features__word__preprocessor": None,
            "features__word__tokenizer": None,
            "features__word__token_pattern": r"(?u)\b\w\w+\b",
            "features__word__lowercase": True,
            "features__char__preprocessor": None,
            "features__char__lowercase": True,
        },
        "+ Porter stemming (word block)": {"features__word__tokenizer": stem_tokenize},
        "+ English stop-words removed (word block)": {
            "features__word__tokenizer": stopword_tokenize
        },
        "+ digits mapped to shape 0": {
            "features__word__preprocessor": digit_shape_normalize,
            "features__char__preprocessor": digit_shape_normalize,
        },
    }


def _fmt(value: float, spec: str) -> str:
    return "n/a" if np.isnan(value) else format(value, spec)


def run_comparison(path: Path, only: list[str] | None) -> None:
    """Print the markdown comparison table for one dataset."""
    texts, labels = load_dataset(path)
    x_tr, x_te, y_tr, y_te = split_holdout(texts, labels)
    out = sys.stdout.write
    out(
        f"\n### {path.name}: {len(texts)} unique names, {len(set(labels))} classes, "
        f"train {len(x_tr)} / test {len(x_te)}\n\n"
    )
    out("| model | accuracy | macro-F1 | ECE (15 bins) | fit s | artifact MB |\n")
    out("|---|---:|---:|---:|---:|---:|\n")
    for name, factory in _candidates().items():
        if only and not any(o in name for o in only):
            continue
        r = score_model(factory(), x_tr, y_tr, x_te, y_te)
        out(
            f"| {name} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {_fmt(r['ece'], '.4f')} "
            f"| {r['fit_s']:.1f} | {r['size_mb']:.1f} |\n"
        )
        sys.stdout.flush()


def run_ablation(path: Path) -> None:
    """Print the normalisation ablation: raw LinearSVC on default features, validation split."""
    texts, labels = load_dataset(path)
    x_tr, _, y_tr, _ = split_holdout(texts, labels)
    x_fit, x_val, y_fit, y_val = split_holdout(x_tr, y_tr, seed=7)
    out = sys.stdout.write
    out(f"\n### ablation on {path.name} (validation split of the training 80 %)\n\n")
    out("| variant | accuracy | macro-F1 |\n|---|---:|---:|\n")
    base = build_pipeline(DEFAULT_ALGORITHM)
    clf = base.named_steps["clf"]
    assert isinstance(clf, CalibratedLinearSVC)
    for name, params in _ablation_variants().items():
        # The uncalibrated SVC isolates the effect of normalisation on the decision.
        pipe = Pipeline(
            [
                ("features", clone(base.named_steps["features"])),
                ("clf", LinearSVC(C=clf.C, class_weight=clf.class_weight, max_iter=clf.max_iter)),
            ]
        )
        pipe.set_params(**params)
        pipe.fit(x_fit, y_fit)
        pred = pipe.predict(x_val)
        out(
            f"| {name} | {accuracy_score(y_val, pred):.4f} | "
            f"{f1_score(y_val, pred, average='macro'):.4f} |\n"
        )
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Entry point: comparison tables (default) and/or the normalisation ablation."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS_DIR)
    parser.add_argument(
        "--dataset", action="append", choices=DATASETS, help="limit to this dataset (repeatable)"
    )
    parser.add_argument(
        "--only", action="append", help="only models whose name contains this text (repeatable)"
    )
    parser.add_argument("--ablation", action="store_true", help="also run the ablation")
    parser.add_argument("--no-comparison", action="store_true", help="skip the model table")
    args = parser.parse_args(argv)
    for name in args.dataset or DATASETS:
        path = args.datasets_dir / name
        if not path.exists():
            sys.stderr.write(f"skipping {name}: not found at {path}\n")
            continue
        if not args.no_comparison:
            run_comparison(path, args.only)
        if args.ablation:
            run_ablation(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
