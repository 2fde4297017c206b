"""Product name -> sparse TF-IDF row, reproducing fitted TfidfVectorizers without scikit-learn.

The counters mirror scikit-learn's analyzers n-gram for n-gram; `weigh` is the one
place where counts become TF-IDF values, so single names and batches share it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import cycle

import numpy as np

from app.ml.scope import coverage

__all__ = [
    "Block",
    "CharNgrams",
    "CharWbNgrams",
    "Featurizer",
    "NgramCounter",
    "Vocabulary",
    "WordNgrams",
    "weigh",
]

# sklearn's own whitespace normalisation for char analyzers (_VectorizerMixin._white_spaces).
_WHITE_SPACES = re.compile(r"\s\s+")

# Words whose char_wb columns are remembered per vectorizer (bounded: about 1 MB).
_WORD_CACHE_SIZE = 4096

# term -> global column (the block's offset plus the vectorizer's own column).
Vocabulary = dict[str, int]


@dataclass(frozen=True, slots=True)
class WordNgrams:
    """Counts word n-grams (analyzer="word") split by the vectorizer's own tokenizer."""

    tokenize: Callable[[str], list[str]]
    vocabulary: Vocabulary
    min_n: int
    max_n: int

    def __call__(self, doc: str) -> dict[int, int]:
        """In-vocabulary n-gram counts of a preprocessed document, keyed by global column."""
        return self.count_with_total(doc)[0]

    def count_with_total(self, doc: str) -> tuple[dict[int, int], int]:
        """The in-vocabulary counts and how many n-grams the document has in all."""
        vocabulary_get = self.vocabulary.get
        counts: dict[int, int] = {}
        tokens = self.tokenize(doc)
        n_tokens = len(tokens)
        total = 0
        for n in range(self.min_n, min(self.max_n, n_tokens) + 1):
            total += n_tokens - n + 1
            for i in range(n_tokens - n + 1):
                j = vocabulary_get(tokens[i] if n == 1 else " ".join(tokens[i : i + n]))
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
        return counts, total


@dataclass(frozen=True, slots=True)
class CharNgrams:
    """Counts character n-grams (analyzer="char"), which may span words."""

    vocabulary: Vocabulary
    min_n: int
    max_n: int

    def __call__(self, doc: str) -> dict[int, int]:
        """In-vocabulary n-gram counts of a preprocessed document, keyed by global column."""
        vocabulary_get = self.vocabulary.get
        counts: dict[int, int] = {}
        text = _WHITE_SPACES.sub(" ", doc)
        text_len = len(text)
        for n in range(self.min_n, min(self.max_n, text_len) + 1):
            for i in range(text_len - n + 1):
                j = vocabulary_get(text[i : i + n])
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
        return counts


@dataclass(frozen=True, slots=True)
class CharWbNgrams:
    """Counts character n-grams inside word boundaries (analyzer="char_wb")."""

    vocabulary: Vocabulary
    min_n: int
    max_n: int
    # char_wb n-grams never cross a word boundary, so each word's columns can be
    # computed once and reused: product names repeat brands and units.
    word_columns: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def __call__(self, doc: str) -> dict[int, int]:
        """In-vocabulary n-gram counts of a preprocessed document, keyed by global column."""
        columns: list[int] = []
        for word in _WHITE_SPACES.sub(" ", doc).split():
            columns.extend(self.columns_of(word))
        return Counter(columns)

    def columns_of(self, word: str) -> tuple[int, ...]:
        """In-vocabulary columns of one word's n-grams, repeated per occurrence (memoised)."""
        word_columns = self.word_columns
        cached = word_columns.get(word)
        if cached is None:
            cached = self._columns(word)
            if len(word_columns) >= _WORD_CACHE_SIZE:
                word_columns.clear()
            word_columns[word] = cached
        return cached

    def _columns(self, word: str) -> tuple[int, ...]:
        """In-vocabulary columns of one word's n-grams, repeated per occurrence."""
        vocabulary_get = self.vocabulary.get
        padded = " " + word + " "
        padded_len = len(padded)
        columns: list[int] = []
        for n in range(self.min_n, self.max_n + 1):
            if n >= padded_len:
                # sklearn emits the whole padded word once for n >= its length.
                j = vocabulary_get(padded)
                if j is not None:
                    columns.append(j)
                break
            for i in range(padded_len - n + 1):
                j = vocabulary_get(padded[i : i + n])
                if j is not None:
                    columns.append(j)
        return tuple(columns)


NgramCounter = WordNgrams | CharNgrams | CharWbNgrams


@dataclass(frozen=True, slots=True)
class Block:
    """One fitted TfidfVectorizer as plain state: how to count terms, then how to weigh them."""

    preprocess: Callable[[str], str]
    count: NgramCounter
    offset: int  # first global column of this block
    idf: np.ndarray | None  # indexed by local column; None when use_idf=False
    sublinear_tf: bool
    binary: bool
    norm: str | None
    weight: float  # the FeatureUnion's transformer weight


def weigh(block: Block, columns: np.ndarray, values: np.ndarray) -> None:
    """Turn one name's raw counts in one block into its final TF-IDF values, in place.

    The operations and their order are TfidfTransformer's, then `normalize`'s, then
    the FeatureUnion weight; whole-row numpy beats per-term Python for ~100 terms.
    """
    if block.binary:
        values[:] = 1.0
    elif block.sublinear_tf:
        np.log(values, out=values)
        values += 1.0
    if block.idf is not None:
        values *= block.idf[columns - block.offset]
    if block.norm == "l2":
        norm = math.sqrt(float(values @ values))
    elif block.norm == "l1":
        norm = float(np.abs(values).sum())
    else:
        norm = 1.0
    values *= block.weight / norm if norm > 0.0 else block.weight


class Featurizer:
    """Turns names into TF-IDF rows over the concatenated columns of all blocks."""

    def __init__(self, blocks: Sequence[Block]) -> None:
        self.blocks = tuple(blocks)

    def rows(
        self, names: Sequence[str], docs: list[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray, list[int], np.ndarray]:
        """CSR parts of the names' rows (column indices, values, row pointers) and word coverage.

        Word coverage is the share of each name's word n-grams found in the word
        blocks' vocabularies (`app.ml.scope`); it costs two additions per name.
        With `docs`, each name's text as the char_wb blocks read it (preprocessed,
        for `app.ml.explain`) is appended to it.
        """
        columns: list[int] = []
        counts: list[int] = []
        ends: list[int] = []  # one entry per (name, block) segment of `columns`
        indptr = [0]
        covered: list[int] = []
        totals: list[int] = []
        for name in names:
            # Blocks usually share one preprocessor: run it once per name.
            prepared: dict[Callable[[str], str], str] = {}
            hits = grams = 0
            for block in self.blocks:
                doc = prepared.get(block.preprocess)
                if doc is None:
                    doc = prepared[block.preprocess] = block.preprocess(name)
                count = block.count
                if isinstance(count, WordNgrams):
                    found, total = count.count_with_total(doc)
                    grams += total
                    hits += sum(found.values())
                else:
                    found = count(doc)
                    if docs is not None and isinstance(count, CharWbNgrams):
                        docs.append(doc)
                columns.extend(found)
                counts.extend(found.values())
                ends.append(len(columns))
            indptr.append(len(columns))
            covered.append(hits)
            totals.append(grams)
        # One conversion for all names, then each segment is weighed in place as a view.
        cols = np.array(columns, dtype=np.intp)
        values = np.array(counts, dtype=np.float64)
        start = 0
        for block, end in zip(cycle(self.blocks), ends, strict=False):
            if end > start:
                weigh(block, cols[start:end], values[start:end])
            start = end
        return cols, values, indptr, coverage(np.array(covered), np.array(totals))

    def clear_word_cache(self) -> None:
        """Forget the memoised per-word columns (benchmarks time the cold path with it)."""
        for block in self.blocks:
            if isinstance(block.count, CharWbNgrams):
                block.count.word_columns.clear()
