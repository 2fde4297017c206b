"""Out-of-fold calibration on features refitted per fold (app/ml/fold_features.py)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import KFold

from app.ml.calibration import CalibratedLinearSVC
from app.ml.dataset import read_csv
from app.ml.fold_features import FoldFeaturesUnsupported, fold_matrices
from app.ml.pipeline import build_features, build_pipeline
from tests.support import SHIPPED_CSV


@pytest.fixture(scope="module")
def texts_and_labels() -> tuple[list[str], list[str]]:
    dataset = read_csv(SHIPPED_CSV)
    return dataset.texts[:900], dataset.labels[:900]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"word__min_df": 2, "char__max_df": 0.5, "word__sublinear_tf": False},
        {"char__min_df": 0.01, "word__ngram_range": (1, 3)},
        # A capped vocabulary (the memory lever of a large catalog), with ties at the cut.
        {"word__max_features": 700, "char__max_features": 3000, "char__min_df": 1},
        {"word__max_features": 50, "word__binary": True, "char__max_features": 20_000},
    ],
)
def test_fold_matrices_equal_refitting_the_features_on_each_fold(
    texts_and_labels: tuple[list[str], list[str]], params: dict[str, object]
) -> None:
    texts, _ = texts_and_labels
    features = build_features().set_params(**params)
    array = np.asarray(texts, dtype=object)
    folds = list(KFold(4, shuffle=True, random_state=1).split(texts))
    for fit_rows, held, x_fit, x_held in fold_matrices(features, texts, folds):
        refitted = clone(features).fit(array[fit_rows])
        expected_fit = refitted.transform(array[fit_rows])
        expected_held = refitted.transform(array[held])
        assert x_fit.shape == expected_fit.shape and x_held.shape == expected_held.shape
        assert abs(x_fit - expected_fit).max() <= 1e-12
        assert abs(x_held - expected_held).max() <= 1e-12


def test_unsupported_features_fall_back_to_shared_features(
    texts_and_labels: tuple[list[str], list[str]],
) -> None:
    texts, labels = texts_and_labels
    with pytest.raises(FoldFeaturesUnsupported):
        next(
            fold_matrices(
                TfidfVectorizer(vocabulary=["susu", "teh"]), texts, [(np.arange(2), np.arange(2))]
            )
        )
    pipeline = build_pipeline(params={"features__word__max_df": 0.9})
    pipeline.steps[0][1].transformer_list[0][1].set_params(vocabulary=["susu", "teh", "kopi"])
    pipeline.fit(texts, labels)
    assert pipeline.predict_proba(texts[:3]).shape == (3, len(set(labels)))


def test_the_default_pipeline_calibrates_on_per_fold_features(
    texts_and_labels: tuple[list[str], list[str]],
) -> None:
    """Held-out rows scored as new names: their own words are not in the fold's vocabulary."""
    texts, labels = texts_and_labels
    pipeline = build_pipeline().fit(texts, labels)
    clf = pipeline.named_steps["clf"]
    assert type(clf) is CalibratedLinearSVC
    shared = CalibratedLinearSVC(**clf.get_params()).fit(
        pipeline.named_steps["features"].transform(texts), labels
    )
    # Same SVC on all rows, different calibration maps: the per-fold features' map
    # is the one the pipeline holds.
    np.testing.assert_allclose(clf.estimator_.coef_, shared.estimator_.coef_, atol=1e-12)
    assert not np.allclose(clf.calibration_theta_, shared.calibration_theta_)
