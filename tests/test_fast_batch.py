"""The batch featurizer (issue 16) must give the per-name path's answers, and so sklearn's."""

from __future__ import annotations

import csv
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from app.ml.algorithms import DEFAULT_ALGORITHM
from app.ml.fast_features import _BATCH_MIN, _WORD_CACHE_SIZE, CharWbNgrams, _Words
from app.ml.fast_path import FAST_PATH_TOLERANCE, FastScorer
from app.ml.pipeline import build_pipeline
from app.ml.preprocessing import _SEPARATOR, normalize_many, normalize_product_name, tokenize

TINY_CSV = Path(__file__).resolve().parent / "data" / "tiny.csv"

# Characters that meet a rule of the normaliser or the separator of its batch
# form: digits and decimal marks, the multiplier, apostrophes, the placeholder,
# "_", whitespace of every kind, combining marks (also at a name's start),
# Hangul jamo that compose, compatibility forms and letters that fold to two.
_AWKWARD = (
    "0123456789.,xX '’`´\u0001_-/\n\r\t\x0b\x0c\x1c\x85\u00a0\u2028\u3000"
    "\u0301\u0308\u0327\u1100\u1161\u11a8ＳＵ２ﬁß\u0130Σς日"
)
_NAMES = st.text(alphabet=st.one_of(st.sampled_from(_AWKWARD), st.characters()), max_size=30)


@pytest.fixture(scope="module")
def fitted() -> Pipeline:
    with TINY_CSV.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    texts = [r["product_name"] for r in rows]
    labels = [r["category"] for r in rows]
    return build_pipeline(DEFAULT_ALGORITHM).fit(texts, labels)


def test_no_code_point_normalises_into_the_separator() -> None:
    # normalize_many splits its result at the separator: no step may create one.
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF or chr(code) == _SEPARATOR:
            continue
        folded = unicodedata.normalize("NFKC", chr(code)).casefold()
        assert _SEPARATOR not in unicodedata.normalize("NFKC", folded), hex(code)


@settings(max_examples=500, deadline=None)
@given(st.lists(_NAMES, max_size=12))
def test_normalize_many_is_the_per_name_normaliser(names: list[str]) -> None:
    assert normalize_many(names) == [normalize_product_name(name) for name in names]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(max_codepoint=127), max_size=30), max_size=12))
def test_normalize_many_is_the_per_name_normaliser_on_ascii(names: list[str]) -> None:
    # ASCII batches take their own route through the punctuation step.
    assert normalize_many(names) == [normalize_product_name(name) for name in names]


def test_normalize_many_keeps_names_apart() -> None:
    # Each pair would change the other's result if the two ran into one another.
    names = ["teh 6", "x200ml", "1", ".5 l", "\u1100", "\u1161", "a\nb", "", " ", "2", "kg"]
    assert normalize_many(names) == [normalize_product_name(name) for name in names]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_NAMES, min_size=_BATCH_MIN, max_size=40))
def test_batch_scores_equal_per_name_scores_and_sklearn(fitted: Pipeline, names: list[str]) -> None:
    scorer = FastScorer.from_pipeline(fitted)
    proba, factor = scorer.score_many(names)
    np.testing.assert_allclose(proba, fitted.predict_proba(names), rtol=0, atol=FAST_PATH_TOLERANCE)
    for i, name in enumerate(names):
        one, one_factor = scorer.score_one(name)
        # Only the order in which a row's terms are summed differs.
        np.testing.assert_allclose(proba[i], one, rtol=0, atol=1e-13)
        assert factor[i] == one_factor


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_NAMES, min_size=_BATCH_MIN, max_size=40))
def test_batch_rows_equal_per_name_rows(fitted: Pipeline, names: list[str]) -> None:
    features = FastScorer.from_pipeline(fitted).parts.features
    cols, values, indptr, coverage = features.rows(names)
    for i, name in enumerate(names):
        one_cols, one_values, _, one_coverage = features.rows((name,))
        row = slice(indptr[i], indptr[i + 1])
        assert sorted(cols[row].tolist()) == sorted(one_cols.tolist())
        np.testing.assert_allclose(
            values[row][np.argsort(cols[row])],
            one_values[np.argsort(one_cols)],
            rtol=1e-14,
            atol=0,
        )
        assert coverage[i] == one_coverage[0]


def test_batch_of_other_preprocessors_takes_the_per_name_path() -> None:
    # sklearn's own preprocessor and token pattern: the batch shortcut does not apply.
    texts = ["susu ultra 250ml", "teh botol", "Indomie goreng", "kopi kapal api"] * 3
    labels = ["susu", "minuman", "mie", "minuman"] * 3
    features = FeatureUnion(
        [
            ("word", TfidfVectorizer(ngram_range=(1, 2))),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4))),
        ]
    )
    pipe = Pipeline([("features", features), ("clf", LogisticRegression())]).fit(texts, labels)
    scorer = FastScorer.from_pipeline(pipe)
    assert not scorer.parts.features._batchable
    names = ["SUSU  Ultra", "teh_botol", "Kopi\u00a0api", "", "x", "ümlaut", "a-b c", "1,5 l"]
    np.testing.assert_allclose(
        scorer.predict_proba_many(names), pipe.predict_proba(names), rtol=0, atol=1e-9
    )


def test_batch_word_cache_stays_bounded() -> None:
    counter = CharWbNgrams({" a": 0, "ab": 1, "b ": 2}, 2, 2)
    docs = [f"w{i} ab" for i in range(_WORD_CACHE_SIZE + 10)]
    rows, columns, _ = counter.count_many(_Words.split(docs))
    assert len(counter.word_columns) <= _WORD_CACHE_SIZE
    # Every doc holds "ab" once: " a", "ab" and "b " each once per row.
    assert np.bincount(rows).tolist() == [3] * len(docs)
    assert sorted(columns[rows == 0].tolist()) == [0, 1, 2]


def test_empty_and_blank_names_in_a_batch(fitted: Pipeline) -> None:
    scorer = FastScorer.from_pipeline(fitted)
    names = ["", " ", "!!!", "\n", "zzzz qqqq", "susu", "", "teh 6x200ml"]
    cols, _, indptr, _ = scorer.parts.features.rows(names)
    assert len(indptr) == len(names) + 1 and indptr[-1] == len(cols)
    np.testing.assert_allclose(
        scorer.predict_proba_many(names), fitted.predict_proba(names), rtol=0, atol=1e-9
    )


# Repeated words and n-grams within a name: where sublinear or binary tf is not
# the count itself, the word sums need their correction.
_REPEATS = [
    "susu susu susu 250ml",
    "aaaa aaaa",
    "teh teh botol",
    "kopi",
    "mama mia mama",
    "",
    "indomie goreng indomie",
    "x",
    "sabun 2 2 2",
    "zzzz qqqq",
]


@pytest.mark.parametrize(
    ("binary", "sublinear_tf", "use_idf", "norm", "weight"),
    [
        (False, True, True, "l2", 1.0),
        (True, False, True, "l2", 0.5),
        (False, False, True, "l1", 2.0),
        (False, True, False, None, 1.0),
        (False, False, False, "l2", 1.0),
    ],
)
def test_batch_matches_sklearn_for_every_tf_weighting(
    binary: bool, sublinear_tf: bool, use_idf: bool, norm: str | None, weight: float
) -> None:
    with TINY_CSV.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    texts = [r["product_name"] for r in rows] + _REPEATS[:4]
    labels = [r["category"] for r in rows] + [rows[i]["category"] for i in range(4)]
    options = {
        "preprocessor": normalize_product_name,
        "lowercase": False,
        "binary": binary,
        "sublinear_tf": sublinear_tf,
        "use_idf": use_idf,
        "norm": norm,
    }
    features = FeatureUnion(
        [
            ("word", TfidfVectorizer(tokenizer=tokenize, token_pattern=None, **options)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), **options)),
        ],
        transformer_weights={"word": 1.0, "char": weight},
    )
    pipe = Pipeline([("features", features), ("clf", LogisticRegression(max_iter=500))])
    pipe.fit(texts, labels)
    scorer = FastScorer.from_pipeline(pipe)
    assert scorer.parts.features._batchable
    names = _REPEATS + texts[:20]
    np.testing.assert_allclose(
        scorer.predict_proba_many(names), pipe.predict_proba(names), rtol=0, atol=1e-12
    )
