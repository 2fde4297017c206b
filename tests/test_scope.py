"""Out-of-scope names: the scope test in the pipeline, the fast path and stored scorers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import KFold

from app.ml.algorithms import ALGORITHMS
from app.ml.dataset import read_csv
from app.ml.fast_path import FAST_PATH_TOLERANCE, FastScorer
from app.ml.fast_path_check import export_scorer
from app.ml.open_set import (
    SCOPE_FOLDS,
    SCOPE_SEED,
    out_of_fold_coverage,
    word_coverage,
    word_vectorizers,
)
from app.ml.scope import ScopeModel
from app.ml.scorer_bundle import load_bundle
from app.ml.training import TrainedModel, fit_model
from tests.support import SHIPPED_CSV

SUSU = "susu ultra coklat 250ml"
# Products of categories the shipped grocery model does not have (issue 13's examples).
FOREIGN = [
    "Angle Grinder / Mesin Gerinda Tangan Orion - HG-954",
    "kemeja putih PNS pria baju PDH cowok - Putih, S",
    "Bubble Wrap Plastik Pembungkus Helm",
    "Atalon Running Pants - Celana Pendek Ringan Lari Jogging",
    "Samsung Galaxy A15 8/256GB",
]


def test_out_of_fold_coverage_equals_refitting_the_vectorizer_per_fold(
    shipped_model: TrainedModel,
) -> None:
    texts = read_csv(SHIPPED_CSV).texts[:600]
    vectorizers = word_vectorizers(shipped_model.pipeline.named_steps["features"])
    assert vectorizers, "the default features have a word block"
    fast = out_of_fold_coverage(vectorizers, texts)
    expected = np.zeros(len(texts))
    array = np.asarray(texts, dtype=object)
    folds = KFold(SCOPE_FOLDS, shuffle=True, random_state=SCOPE_SEED).split(texts)
    for fit_rows, held in folds:
        refitted = [clone(vec).fit(array[fit_rows]) for vec in vectorizers]
        expected[held] = word_coverage(refitted, array[held])
    np.testing.assert_array_equal(fast, expected)
    # Not trivially 1: unseen names do miss words.
    assert fast.min() < 1.0


def test_scope_factor_is_the_conformal_p_value_over_alpha() -> None:
    reference = np.linspace(0.0, 1.0, 99)
    scope = ScopeModel.fit(reference, alpha=0.1)
    # p = (1 + #{reference <= c}) / 100; the factor is min(1, p / 0.1).
    factors = scope.factor(np.array([-1.0, 0.0, reference[4], reference[9], 1.0]))
    np.testing.assert_allclose(factors, [0.1, 0.2, 0.6, 1.0, 1.0])
    assert ScopeModel.from_spec(scope.spec()).spec() == scope.spec()
    with pytest.raises(ValueError):
        ScopeModel.from_spec({**scope.spec(), "tail": [0.5, 0.1]})


def test_foreign_products_fall_below_half_and_are_out_of_scope(
    shipped_model: TrainedModel,
) -> None:
    pipeline = shipped_model.pipeline
    proba = pipeline.predict_proba(FOREIGN)
    assert proba.max(axis=1).max() < 0.5, dict(zip(FOREIGN, proba.max(axis=1), strict=True))
    assert not pipeline.in_scope(FOREIGN).any()
    # The model's own kind of names keep their scores.
    familiar = ["susu ultra coklat 250ml", "indomie goreng 85g"]
    assert pipeline.in_scope(familiar).all()
    assert pipeline.predict_proba(familiar).max(axis=1).min() > 0.9


def test_in_scope_holdout_names_are_rarely_called_out_of_scope(
    shipped_model: TrainedModel,
) -> None:
    """The conformal level: about alpha of unseen in-scope names fail the test."""
    share = shipped_model.metrics["in_scope_share"]
    alpha = shipped_model.metrics["scope_alpha"]
    assert 1 - 3 * alpha <= share <= 1.0
    assert shipped_model.metrics["ece"] <= 0.03


def test_fast_path_and_stored_scorer_reproduce_the_scope_test(
    shipped_model: TrainedModel, tmp_path: Path
) -> None:
    pipeline = shipped_model.pipeline
    names = [*FOREIGN, *shipped_model.holdout_texts[:50], "zzzq qqxv"]
    expected = pipeline.predict_proba(names)
    scorer = FastScorer.from_pipeline(pipeline)
    assert np.abs(scorer.predict_proba_many(names) - expected).max() <= FAST_PATH_TOLERANCE
    for name, row in zip(names, expected, strict=True):
        assert np.abs(scorer.predict_proba_one(name) - row).max() <= FAST_PATH_TOLERANCE
    bundle = export_scorer(pipeline, tmp_path, "v9", shipped_model.dataset.texts)
    assert bundle is not None
    stored = load_bundle(tmp_path, bundle.manifest_file, bundle.manifest_sha256)
    assert np.abs(stored.predict_proba_many(names) - expected).max() <= FAST_PATH_TOLERANCE
    _, factors = stored.score_many(names)
    np.testing.assert_array_equal(factors < 1.0, ~pipeline.in_scope(names))


def test_scope_alpha_zero_turns_the_test_off() -> None:
    dataset = read_csv(SHIPPED_CSV)
    trained = fit_model(dataset, params={"scope_alpha": 0.0})
    assert trained.pipeline.in_scope(FOREIGN).all()
    proba = trained.pipeline.predict_proba(FOREIGN)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_has_the_scope_test_in_pipeline_and_fast_path(algorithm: str) -> None:
    trained = fit_model(read_csv(SHIPPED_CSV), algorithm=algorithm, refit=False)
    pipeline = trained.pipeline
    assert not pipeline.in_scope(FOREIGN).any()
    assert pipeline.predict_proba(FOREIGN).max() < 0.5
    names = [*FOREIGN, *trained.holdout_texts[:30]]
    scorer = FastScorer.from_pipeline(pipeline)
    assert np.abs(scorer.predict_proba_many(names) - pipeline.predict_proba(names)).max() <= (
        FAST_PATH_TOLERANCE
    )
    explanation = scorer.explain_one(trained.holdout_texts[0])[2]
    assert explanation.category == pipeline.predict([trained.holdout_texts[0]])[0]
    assert explanation.supporting
