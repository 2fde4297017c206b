"""Tests for the shared product-name normalisation and tokenisation."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.ml.preprocessing import analyze, normalize_product_name, tokenize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("susu ultra coklat 250ml", "susu ultra coklat 250 ml"),
        ("Beras 1kg", "beras 1 kg"),
        ("Minyak 1,5L", "minyak 1.5 l"),
        ("Teh 6x200ml", "teh 6 x 200 ml"),
        ("Air Mineral 600 ML", "air mineral 600 ml"),
    ],
)
def test_digits_split_from_units(raw: str, expected: str) -> None:
    assert normalize_product_name(raw) == expected


def test_nfkc_full_width_digits_and_letters() -> None:
    assert normalize_product_name("ＳＵＳＵ　２５０ｍｌ") == "susu 250 ml"


def test_case_folding_goes_beyond_lower() -> None:
    assert normalize_product_name("STRAẞE Straße") == "strasse strasse"
    assert normalize_product_name("KOPI Kapal API") == "kopi kapal api"


def test_punctuation_becomes_separator() -> None:
    assert normalize_product_name("Indomie (Goreng) - Rendang/Spesial!") == (
        "indomie goreng rendang spesial"
    )
    assert normalize_product_name("snack_bar & cereal") == "snack bar cereal"


def test_apostrophes_keep_word_together() -> None:
    assert normalize_product_name("Kellogg's Corn Flakes") == "kelloggs corn flakes"
    assert normalize_product_name("Kellogg’s") == "kelloggs"


def test_whitespace_collapsed_and_trimmed() -> None:
    assert normalize_product_name("  gula \t pasir\n\n 1 kg  ") == "gula pasir 1 kg"


@pytest.mark.parametrize("raw", ["", "   ", "!!!", "---", "\t\n", "()[]{}"])
def test_empty_after_cleaning(raw: str) -> None:
    assert normalize_product_name(raw) == ""
    assert analyze(raw) == []


def test_decimal_kept_but_not_sentence_dots() -> None:
    assert normalize_product_name("Gula 0.5kg. Murah.") == "gula 0.5 kg murah"


def test_tokenize_splits_normalised_text() -> None:
    assert tokenize("susu ultra 250 ml") == ["susu", "ultra", "250", "ml"]
    assert analyze("Susu ULTRA 250ml") == ["susu", "ultra", "250", "ml"]
    assert tokenize("") == []


def test_functions_are_picklable_by_reference() -> None:
    # Pipelines hold these callables; joblib must pickle them by module path.
    for fn in (normalize_product_name, tokenize, analyze):
        assert pickle.loads(pickle.dumps(fn)) is fn


@given(st.text())
def test_normalized_output_is_clean(text: str) -> None:
    out = normalize_product_name(text)
    assert out == out.strip()
    assert "  " not in out
    assert all(not ch.isspace() or ch == " " for ch in out)
    assert tokenize(out) == (out.split(" ") if out else [])
