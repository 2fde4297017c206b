"""The fast scorer must reproduce ``pipeline.predict_proba`` to 1e-9 or refuse the pipeline."""

from __future__ import annotations

import csv
import io
import random
import sys
from collections import Counter
from pathlib import Path

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.calibration import CalibratedClassifierCV
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from app.ml.algorithms import ALGORITHMS, CALIBRATION_METHODS, DEFAULT_ALGORITHM
from app.ml.calibration import CalibratedLinearSVC
from app.ml.evaluation import split_holdout
from app.ml.fast_features import _WORD_CACHE_SIZE, CharWbNgrams
from app.ml.fast_path import FastScorer, UnsupportedPipelineError
from app.ml.fast_path_check import export_scorer
from app.ml.pipeline import build_features, build_pipeline
from app.ml.preprocessing import split_tokens, tokenize
from app.ml.scorer_bundle import load_bundle
from app.ml.temperature import adaptive_temperature_logits

TINY_CSV = Path(__file__).resolve().parent / "data" / "tiny.csv"

_VOCAB: dict[str, tuple[list[str], list[str]]] = {
    "Susu": (["susu", "milk", "yogurt", "keju"], ["ultra", "frisian", "indomilk", "greenfields"]),
    "Mie Instan": (["mie", "indomie", "ramen", "bihun"], ["goreng", "kuah", "soto", "rendang"]),
    "Minuman": (["teh", "kopi", "jus", "air mineral"], ["botol", "kotak", "sachet", "dingin"]),
    "Sabun": (["sabun", "shampo", "sampo", "deterjen"], ["lifebuoy", "dettol", "rinso", "wangi"]),
}
_UNITS = ["ml", "g", "kg", "L", "pcs", "gr"]


def _synthetic_rows(n_per_class: int = 60, seed: int = 3) -> tuple[list[str], list[str]]:
    """Small labelled set of Indonesian-style product names with shared unit noise."""
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[str] = []
    for label, (heads, mods) in _VOCAB.items():
        for _ in range(n_per_class):
            qty = f"{rng.choice([1, 2, 5, 10, 80, 200, 250, 600])}{rng.choice(_UNITS)}"
            words = [rng.choice(heads), rng.choice(mods), qty]
            if rng.random() < 0.3:
                # Borrow a word from another class so the problem is not separable.
                other = rng.choice([k for k in _VOCAB if k != label])
                words.insert(1, rng.choice(_VOCAB[other][1]))
            rng.shuffle(words)
            texts.append(" ".join(words).title() if rng.random() < 0.5 else " ".join(words))
            labels.append(label)
    return texts, labels


def _dataset() -> tuple[list[str], list[str]]:
    if TINY_CSV.exists():
        with TINY_CSV.open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if len(rows) >= 40:
            return [r["product_name"] for r in rows], [r["category"] for r in rows]
    return _synthetic_rows()


@pytest.fixture(scope="module")
def split() -> tuple[list[str], list[str], list[str], list[str]]:
    texts, labels = _dataset()
    return split_holdout(texts, labels, test_size=0.25, seed=42)


@pytest.fixture(scope="module")
def fitted(split: tuple[list[str], list[str], list[str], list[str]]) -> Pipeline:
    x_tr, _, y_tr, _ = split
    return build_pipeline(DEFAULT_ALGORITHM).fit(x_tr, y_tr)


EDGE_CASES = ["", " ", "!!!", "ＳＵＳＵ ２５０ｍｌ", "日本語", "x", "zzzz qqqq", "a b c d e f g"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_fast_path_matches_pipeline_on_holdout(
    algorithm: str, split: tuple[list[str], list[str], list[str], list[str]]
) -> None:
    x_tr, x_te, y_tr, _ = split
    pipe = build_pipeline(algorithm).fit(x_tr, y_tr)
    scorer = FastScorer.from_pipeline(pipe)
    names = x_te + EDGE_CASES
    expected = pipe.predict_proba(names)
    np.testing.assert_allclose(scorer.predict_proba_many(names), expected, rtol=0, atol=1e-9)
    one = np.vstack([scorer.predict_proba_one(n) for n in names])
    np.testing.assert_allclose(one, expected, rtol=0, atol=1e-9)
    assert scorer.classes.tolist() == [str(c) for c in pipe.classes_]


def test_fast_path_binary_problem(split: tuple[list[str], list[str], list[str], list[str]]) -> None:
    x_tr, x_te, y_tr, _ = split
    # The two most frequent labels, so the check runs on whatever data is at hand.
    pair = {label for label, _ in Counter(y_tr).most_common(2)}
    keep = [i for i, y in enumerate(y_tr) if y in pair]
    xb, yb = [x_tr[i] for i in keep], [y_tr[i] for i in keep]
    for algorithm in ALGORITHMS:
        pipe = build_pipeline(algorithm).fit(xb, yb)
        scorer = FastScorer.from_pipeline(pipe)
        names = x_te + EDGE_CASES
        np.testing.assert_allclose(
            scorer.predict_proba_many(names), pipe.predict_proba(names), rtol=0, atol=1e-9
        )


@pytest.mark.parametrize("method", CALIBRATION_METHODS)
@pytest.mark.parametrize("n_classes", [2, None])
def test_fast_path_every_calibration_map(
    method: str, n_classes: int | None, split: tuple[list[str], list[str], list[str], list[str]]
) -> None:
    x_tr, x_te, y_tr, _ = split
    if n_classes is not None:
        pair = {label for label, _ in Counter(y_tr).most_common(n_classes)}
        x_tr, y_tr = zip(
            *[(x, y) for x, y in zip(x_tr, y_tr, strict=True) if y in pair], strict=True
        )
    pipe = build_pipeline(DEFAULT_ALGORITHM, {"clf__calibration": method}).fit(list(x_tr), y_tr)
    scorer = FastScorer.from_pipeline(pipe)
    names = x_te + EDGE_CASES
    expected = pipe.predict_proba(names)
    np.testing.assert_allclose(scorer.predict_proba_many(names), expected, rtol=0, atol=1e-9)
    one = np.vstack([scorer.predict_proba_one(n) for n in names])
    np.testing.assert_allclose(one, expected, rtol=0, atol=1e-9)


def test_adaptive_map_keeps_the_svc_decision(fitted: Pipeline) -> None:
    clf = fitted.named_steps["clf"]
    assert isinstance(clf, CalibratedLinearSVC) and clf.calibration == "adaptive"
    names = ["susu ultra 250ml", "Indomie Goreng 80g", "", "sabun mandi", "kopi kapal api"]
    x = fitted.named_steps["features"].transform(names)
    svc_pred = clf.estimator_.classes_[clf.estimator_.decision_function(x).argmax(axis=1)]
    assert fitted.predict(names).tolist() == clf.classes_[svc_pred].tolist()


def test_artifact_without_theta_still_scores(fitted: Pipeline) -> None:
    # Artifacts pickled before the adaptive map existed have no calibration_theta_.
    old = joblib.load(io.BytesIO(_dump(fitted)))
    clf = old.named_steps["clf"]
    clf.calibration = "matrix"
    del clf.calibration_theta_
    names = ["susu ultra 250ml", ""]
    scorer = FastScorer.from_pipeline(old)
    np.testing.assert_allclose(
        scorer.predict_proba_many(names), old.predict_proba(names), rtol=0, atol=1e-9
    )


def _dump(model: Pipeline) -> bytes:
    buf = io.BytesIO()
    joblib.dump(model, buf)
    return buf.getvalue()


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=6).flatmap(
        lambda k: st.lists(
            st.lists(
                st.floats(min_value=-50, max_value=50).map(lambda v: round(v, 6)),
                min_size=k,
                max_size=k,
            ),
            min_size=1,
            max_size=8,
        )
    ),
    st.lists(st.floats(min_value=-5, max_value=5, allow_nan=False), min_size=3, max_size=3),
)
def test_adaptive_temperature_is_a_positive_row_scale(
    rows: list[list[float]], theta: list[float]
) -> None:
    logits = np.asarray(rows, dtype=np.float64)
    out = adaptive_temperature_logits(logits, np.asarray(theta))
    assert np.all(np.isfinite(out))
    # A positive per-row factor: signs and order (hence the arg-max) never change.
    assert np.array_equal(np.sign(out), np.sign(logits))
    nonzero = logits != 0
    ratio = np.where(nonzero, out / np.where(nonzero, logits, 1.0), np.nan)
    for row, mask in zip(ratio, nonzero, strict=True):
        if mask.any():
            assert np.allclose(row[mask], row[mask][0], rtol=1e-12)
            assert row[mask][0] > 0


def test_fast_path_survives_joblib_round_trip(fitted: Pipeline) -> None:
    buf = io.BytesIO()
    joblib.dump(fitted, buf)
    buf.seek(0)
    loaded = joblib.load(buf)
    scorer = FastScorer.from_pipeline(loaded)
    names = ["susu ultra 250ml", "Indomie Goreng 80g", ""]
    np.testing.assert_allclose(
        scorer.predict_proba_many(names), fitted.predict_proba(names), rtol=0, atol=1e-9
    )


def test_char_wb_word_cache_stays_bounded_and_exact() -> None:
    counter = CharWbNgrams({" a": 0, "ab": 1, "b ": 2}, 2, 2)
    for i in range(_WORD_CACHE_SIZE + 10):
        counter(f"w{i}")
    assert len(counter.word_columns) <= _WORD_CACHE_SIZE
    assert counter("ab  ab") == {0: 2, 1: 2, 2: 2}


def test_predict_proba_many_empty(fitted: Pipeline) -> None:
    scorer = FastScorer.from_pipeline(fitted)
    assert scorer.predict_proba_many([]).shape == (0, len(fitted.classes_))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.text(alphabet="susu ultra indomie goreng 250ml KG teh kopi.,-/", max_size=40),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_fast_path_property_arbitrary_unicode(fitted: Pipeline, names: list[str]) -> None:
    scorer = FastScorer.from_pipeline(fitted)
    expected = fitted.predict_proba(names)
    np.testing.assert_allclose(scorer.predict_proba_many(names), expected, rtol=0, atol=1e-9)
    for name, row in zip(names, expected, strict=True):
        np.testing.assert_allclose(scorer.predict_proba_one(name), row, rtol=0, atol=1e-9)


@pytest.fixture(scope="module")
def fitted_all(split: tuple[list[str], list[str], list[str], list[str]]) -> dict[str, Pipeline]:
    x_tr, _, y_tr, _ = split
    return {algorithm: build_pipeline(algorithm).fit(x_tr, y_tr) for algorithm in ALGORITHMS}


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(ALGORITHMS),
    st.lists(st.text(alphabet="susu ultra indomie teh 250ml KG 1,5L 6x.-/'ＳＵ日", max_size=40)),
)
def test_fast_path_property_every_algorithm(
    fitted_all: dict[str, Pipeline], algorithm: str, names: list[str]
) -> None:
    pipe = fitted_all[algorithm]
    scorer = FastScorer.from_pipeline(pipe)
    got = scorer.predict_proba_many(names)
    assert got.shape == (len(names), len(pipe.classes_))
    if names:
        np.testing.assert_allclose(got, pipe.predict_proba(names), rtol=0, atol=1e-9)
        np.testing.assert_allclose(
            np.vstack([scorer.predict_proba_one(n) for n in names]),
            pipe.predict_proba(names),
            rtol=0,
            atol=1e-9,
        )


def test_unsupported_classifier_raises(
    split: tuple[list[str], list[str], list[str], list[str]],
) -> None:
    x_tr, _, y_tr, _ = split
    pipe = Pipeline([("features", build_features()), ("clf", MultinomialNB())]).fit(x_tr, y_tr)
    with pytest.raises(UnsupportedPipelineError, match="MultinomialNB"):
        FastScorer.from_pipeline(pipe)


def test_unsupported_calibration_method_raises(
    split: tuple[list[str], list[str], list[str], list[str]],
) -> None:
    x_tr, _, y_tr, _ = split
    clf = CalibratedClassifierCV(LinearSVC(), method="isotonic", cv=3)
    pipe = Pipeline([("features", build_features()), ("clf", clf)]).fit(x_tr, y_tr)
    with pytest.raises(UnsupportedPipelineError, match="isotonic"):
        FastScorer.from_pipeline(pipe)


def test_unsupported_stop_words_raise(
    split: tuple[list[str], list[str], list[str], list[str]],
) -> None:
    x_tr, _, y_tr, _ = split
    pipe = build_pipeline(DEFAULT_ALGORITHM, {"features__word__stop_words": ["susu"]})
    pipe.fit(x_tr, y_tr)
    with pytest.raises(UnsupportedPipelineError, match="stop_words"):
        FastScorer.from_pipeline(pipe)


def test_unfitted_pipeline_raises() -> None:
    with pytest.raises(UnsupportedPipelineError):
        FastScorer.from_pipeline(build_pipeline())


def _stored(pipe: Pipeline, tmp_path: Path, texts: list[str]) -> FastScorer:
    """The scorer of `pipe` written as a bundle and read back, as a worker loads it."""
    written = export_scorer(pipe, tmp_path, "v9.9.9", texts)
    assert written is not None
    return load_bundle(tmp_path, written.manifest_file, written.manifest_sha256)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("n_classes", [2, None])
def test_stored_scorer_matches_pipeline_for_every_head(
    algorithm: str,
    n_classes: int | None,
    split: tuple[list[str], list[str], list[str], list[str]],
    tmp_path: Path,
) -> None:
    x_tr, x_te, y_tr, _ = split
    if n_classes is not None:
        pair = {label for label, _ in Counter(y_tr).most_common(n_classes)}
        keep = [i for i, y in enumerate(y_tr) if y in pair]
        x_tr, y_tr = [x_tr[i] for i in keep], [y_tr[i] for i in keep]
    pipe = build_pipeline(algorithm).fit(x_tr, y_tr)
    scorer = _stored(pipe, tmp_path, x_tr)
    names = x_te + EDGE_CASES
    expected = pipe.predict_proba(names)
    np.testing.assert_allclose(scorer.predict_proba_many(names), expected, rtol=0, atol=1e-9)
    one = np.vstack([scorer.predict_proba_one(n) for n in names])
    np.testing.assert_allclose(one, expected, rtol=0, atol=1e-9)
    assert scorer.classes.tolist() == [str(c) for c in pipe.classes_]


def test_stored_scorer_batches_larger_than_one_gather_step(
    fitted: Pipeline, split: tuple[list[str], list[str], list[str], list[str]], tmp_path: Path
) -> None:
    # Enough names that predict_proba_many works through several bounded chunks,
    # with empty rows (no known n-gram) between them.
    x_tr, x_te, _, _ = split
    names = (x_te + ["", "zzzz qqqq"]) * 400
    scorer = _stored(fitted, tmp_path, x_tr)
    np.testing.assert_allclose(
        scorer.predict_proba_many(names), fitted.predict_proba(names), rtol=0, atol=1e-9
    )


def test_split_tokens_is_the_nltk_tokenizer_on_every_code_point() -> None:
    # Serving tokenises with split_tokens; the pipeline was fitted with NLTK's.
    # Each code point between two letters: a separator splits them, any other joins.
    for start in range(0, sys.maxunicode + 1, 4096):
        chunk = [chr(c) for c in range(start, min(start + 4096, sys.maxunicode + 1))]
        text = "".join(f"a{c}b " for c in chunk if not 0xD800 <= ord(c) <= 0xDFFF)
        assert split_tokens(text) == tokenize(text), hex(start)


@given(st.lists(st.text(max_size=40), max_size=30))
@settings(max_examples=200, deadline=None)
def test_split_tokens_is_the_nltk_tokenizer(texts: list[str]) -> None:
    for text in [*texts, "a\u00a0b\u2003c\u3000d", "x\n\ty\x1cz", "  "]:
        assert split_tokens(text) == tokenize(text)
