"""Deterministic product-name normalisation and tokenisation shared by training and serving."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

__all__ = [
    "analyze",
    "nfkc_length",
    "normalize_many",
    "normalize_product_name",
    "split_tokens",
    "tokenize",
]

# Apostrophes inside words ("kellogg's") are dropped rather than split so the
# brand stays one token; NFKC already folds the full-width and typographic forms
# we care about except the curly quotes listed here.
_APOSTROPHES = re.compile(r"['\u2019\u2018`\u00b4]")
# A decimal comma/point between digits is part of the quantity ("1,5 l" == "1.5 l").
_DECIMAL = re.compile(r"(?<=\d)[.,](?=\d)")
# Anything that is not a letter, digit or the decimal marker becomes a separator.
# "_" counts as punctuation here although \w matches it.
_NON_WORD = re.compile(r"[^\w\u0001]|_")
# Split a digit run from the letters that follow it ("250ml" -> "250 ml").
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[^\W\d_])")
# "6x200ml" is a pack multiplier, not a word "x200".
_MULTIPLIER = re.compile(r"(?<=\d)\s*x(?=\d)")
_SPACES = re.compile(r"\s+")
# Two spaces or more: where " " is the only whitespace, single ones need no change.
_SPACE_RUN = re.compile(r"  +")
# \u0001 is a private placeholder for the decimal point while punctuation is
# stripped; it is removed from the input first so user text cannot smuggle it in.
_PLACEHOLDER = "\u0001"

# First prefix tried by nfkc_length; one character expands to at most 18 under
# NFKC (U+FDFA), so 32 characters are enough to see a 300-character cap broken.
_FIRST_PREFIX = 32


def nfkc_length(text: str, limit: int) -> int:
    """The length of `text` after NFKC, exact up to `limit`; above it, some number > `limit`.

    A hostile name is refused after normalising a short prefix rather than all of
    it: NFKC can turn 300 characters into 5,400, and normalising that much is
    itself most of the cost the length cap exists to bound.
    """
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return len(text)
    size = _FIRST_PREFIX
    while size < len(text):
        head = unicodedata.normalize("NFKC", text[:size])
        # Only the last combining sequence of a prefix can change when more text
        # follows, so the characters before its last starter are in the full result.
        stable = _last_starter(head)
        if stable > limit:
            return stable
        size *= 4
    return len(unicodedata.normalize("NFKC", text))


def _last_starter(text: str) -> int:
    for index in range(len(text) - 1, -1, -1):
        if unicodedata.combining(text[index]) == 0:
            return index
    return 0


def normalize_product_name(text: str) -> str:
    """Return the canonical product name: NFKC, casefolded, units split, punctuation removed."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).casefold()
    # Casefolding can leave non-NFKC sequences behind; normalising again keeps the
    # output in NFKC so visually equal names map to the same features.
    text = unicodedata.normalize("NFKC", text)
    text = text.replace(_PLACEHOLDER, " ")
    text = _APOSTROPHES.sub("", text)
    text = _DECIMAL.sub(_PLACEHOLDER, text)
    text = _NON_WORD.sub(" ", text)
    text = text.replace(_PLACEHOLDER, ".")
    text = _MULTIPLIER.sub(" x ", text)
    text = _DIGIT_LETTER.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


# `normalize_many` runs the steps above once over its names joined by this
# separator. No step moves text across it: NFKC and case folding never produce
# it, it is a normalisation boundary (a starter that composes with nothing), and
# no pattern's look-around matches it. Two patterns are respelled for speed (over
# a long text a leading look-behind is tried at every position; a leading
# character class is found by a fast scan); after _NON_WORD the only whitespace
# left is " ", so " *" there matches what \s* matched.
_SEPARATOR = "\n"
_DECIMAL_MARK = re.compile(r"[.,](?<=\d[.,])(?=\d)")
_MULTIPLIER_AFTER_DIGIT = re.compile(r"(\d) *x(?=\d)")
_NON_WORD_RUN = re.compile(r"[^\w\u0001\n]+")


def normalize_many(texts: Sequence[str]) -> list[str]:
    """`normalize_product_name` of each text, in one pass of each step over all of them.

    Per name, the six substitutions and two normalisations cost more in call
    overhead than in matching; over a joined batch they run once.
    """
    if not texts:
        return []
    joined = _SEPARATOR.join(texts)
    if joined.count(_SEPARATOR) != len(texts) - 1:
        # A name holds the separator; in a name it is whitespace like " ", which
        # every step treats the same way (both are normalisation boundaries and
        # both end up as one " "), so it can be respelled before joining.
        joined = _SEPARATOR.join(text.replace(_SEPARATOR, " ") for text in texts)
    text = unicodedata.normalize("NFKC", joined).casefold()
    text = unicodedata.normalize("NFKC", text)
    text = text.replace(_PLACEHOLDER, " ")
    text = _APOSTROPHES.sub("", text)
    text = _DECIMAL_MARK.sub(_PLACEHOLDER, text)
    if text.isascii():
        # _NON_WORD replaces single characters, so it is a translation of those it
        # matches (found by the pattern itself) but the separator; str.translate
        # is fast on ASCII only, where it costs a quarter of the substitution.
        table = dict.fromkeys(map(ord, _NON_WORD.findall("".join(set(text)))), " ")
        table.pop(ord(_SEPARATOR), None)
        text = text.translate(table)
    else:
        # Runs at once: the spaces they leave are collapsed below anyway.
        text = _NON_WORD_RUN.sub(" ", text.replace("_", " "))
    text = text.replace(_PLACEHOLDER, ".")
    text = _MULTIPLIER_AFTER_DIGIT.sub(r"\1 x ", text)
    text = _DIGIT_LETTER.sub(" ", text)
    text = _SPACE_RUN.sub(" ", text).strip(" ")
    # Single spaces now, so each name has at most one to strip at either end.
    text = text.replace(" \n", _SEPARATOR).replace("\n ", _SEPARATOR)
    return text.split(_SEPARATOR)


# Word tokens of a normalised name: runs of non-space characters.
_TOKEN_PATTERN = r"\S+"
# The same runs for the stdlib engine. NLTK matches with the `regex` engine, whose
# \s is Unicode's White_Space property; stdlib re's \s also takes U+001C-U+001F.
_TOKEN = re.compile("[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


def tokenize(text: str) -> list[str]:
    """Split an already normalised name into word tokens (data-free NLTK tokenizer)."""
    tokens: list[str] = _tokenizer().tokenize(text)
    return tokens


def split_tokens(text: str) -> list[str]:
    """`tokenize` without NLTK: what a serving worker runs for the same tokens.

    NLTK's RegexpTokenizer without gaps is `findall` of its pattern (tested to
    agree on every code point); importing NLTK loads scikit-learn and SciPy, about 90 MB a worker
    that serves a stored scorer does not otherwise need.
    """
    return _TOKEN.findall(text)


@functools.cache
def _tokenizer() -> Any:
    # Imported on first use: importing NLTK loads scikit-learn and SciPy, and the
    # normaliser above must stay light for the request schemas that use it.
    from nltk.tokenize import RegexpTokenizer

    return RegexpTokenizer(_TOKEN_PATTERN)


def analyze(text: str) -> list[str]:
    """Normalise then tokenise a raw product name."""
    return tokenize(normalize_product_name(text))
