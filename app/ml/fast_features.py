"""Product name -> sparse TF-IDF row, reproducing fitted TfidfVectorizers without scikit-learn.

The counters mirror scikit-learn's analyzers n-gram for n-gram; `weigh` (one name)
and `weigh_many` (a batch) turn counts into TF-IDF values with the same operations
in the same order. A batch of names normalised by `normalize_product_name` is
counted a step at a time over all its names (`Featurizer.batch`): per-name
Python calls cost more than the work they do.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain, count, cycle, repeat

import numpy as np

from app.ml.preprocessing import normalize_many, normalize_product_name, split_tokens, tokenize
from app.ml.scope import coverage

__all__ = [
    "BatchRows",
    "Block",
    "CharNgrams",
    "CharWbNgrams",
    "Featurizer",
    "NgramCounter",
    "Vocabulary",
    "WordNgrams",
    "WordSums",
    "weigh",
    "weigh_many",
]

# sklearn's own whitespace normalisation for char analyzers (_VectorizerMixin._white_spaces).
_WHITE_SPACES = re.compile(r"\s\s+")

# Words whose char_wb columns are remembered per vectorizer (bounded: about 5 MB,
# 300 bytes a word). Big enough for a real catalog's vocabulary (Instacart's
# 48,000 names hold 10,700 distinct words), so a bulk pass over it in chunks
# does not derive most words again in every chunk.
_WORD_CACHE_SIZE = 16384

# A batch's (row, column) pairs are sorted and counted as one int64 each.
_ROW_SHIFT = 32
_COLUMN_MASK = (1 << _ROW_SHIFT) - 1

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

    def count_many(self, words: _Words) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every in-vocabulary n-gram of a batch as (row, column) pairs, and each row's total.

        `words` must be what this counter's tokenizer returns for each document.
        """
        get = self.vocabulary.get
        tokens, row_of = words.tokens, words.row_of
        rows: list[np.ndarray] = []
        columns: list[np.ndarray] = []
        totals = np.zeros(words.lengths.shape[0], dtype=np.intp)
        for n in range(self.min_n, self.max_n + 1):
            # The n-grams of the concatenated token list; those spanning two
            # documents are looked up in vain, then dropped.
            shifted = (tokens[i:] for i in range(n))
            grams = tokens if n == 1 else list(map(" ".join, zip(*shifted, strict=False)))
            found = np.fromiter(map(get, grams, repeat(-1)), dtype=np.intp, count=len(grams))
            keep = found >= 0
            if n > 1:
                keep &= row_of[: len(grams)] == row_of[n - 1 :]
            rows.append(row_of[: len(grams)][keep])
            columns.append(found[keep])
            totals += np.maximum(words.lengths - (n - 1), 0)
        return np.concatenate(rows), np.concatenate(columns), totals


@dataclass(frozen=True, slots=True)
class _Words:
    """The tokens of a batch of documents, concatenated, with the row each belongs to."""

    tokens: list[str]
    row_of: np.ndarray  # per token
    lengths: np.ndarray  # tokens per document

    @classmethod
    def split(cls, docs: Sequence[str]) -> _Words:
        """Whitespace-separated tokens of each document."""
        per_doc = [doc.split() for doc in docs]
        lengths = np.fromiter(map(len, per_doc), dtype=np.intp, count=len(per_doc))
        return cls(
            tokens=list(chain.from_iterable(per_doc)),
            row_of=np.repeat(np.arange(len(per_doc)), lengths),
            lengths=lengths,
        )


@dataclass(frozen=True, slots=True)
class _WordColumns:
    """A batch's distinct words' columns (flattened, word after word) and each token's word."""

    columns: np.ndarray
    starts: np.ndarray  # where each distinct word's columns start, and one more at the end
    word_of: np.ndarray  # per token: its distinct word


@dataclass(frozen=True, slots=True)
class WordSums:
    """One char_wb block's share of a batch's scores, summed word by word.

    A char_wb n-gram lies inside one word, so a row's values in the block times
    the weights equal its scale (weight / norm) times the sum over its words of
    each word's idf-weighted weight rows, `counts[c] * idf[c] * weights[c]`
    summed over the word's columns. That sum is taken once per distinct word
    of the batch instead of once per n-gram of every name. Where the tf
    weighting is not the count itself (a column counted more than once in a
    row, under sublinear_tf or binary), `BatchRows` carries the difference as an
    ordinary entry.
    """

    columns: np.ndarray  # the distinct words' columns, word after word
    idf: np.ndarray  # per entry of `columns` (1.0 without idf)
    starts: np.ndarray  # where each distinct word's columns start; one more at the end
    words: np.ndarray  # per token of the batch, in row order: its distinct word
    scales: np.ndarray  # per token: its row's scale
    token_starts: np.ndarray  # where each row's tokens start; one more at the end


@dataclass(frozen=True, slots=True)
class BatchRows:
    """A batch's rows: sparse entries plus, for char_wb blocks, sums over words."""

    columns: np.ndarray
    values: np.ndarray
    indptr: np.ndarray
    coverage: np.ndarray
    word_sums: tuple[WordSums, ...]


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

    def count_many(self, words: _Words) -> tuple[np.ndarray, np.ndarray, _WordColumns]:
        """Every in-vocabulary n-gram of a batch as (row, column) pairs, and its distinct words.

        `words` must be the documents' whitespace-separated words. Each distinct
        word of the batch is looked up once, then its columns are copied per use.
        """
        distinct = dict.fromkeys(words.tokens)
        per_word = [self.columns_of(word) for word in distinct]
        width = np.fromiter(map(len, per_word), dtype=np.intp, count=len(per_word))
        starts = np.zeros(width.shape[0] + 1, dtype=np.intp)
        np.cumsum(width, out=starts[1:])
        flat = np.fromiter(chain.from_iterable(per_word), dtype=np.intp, count=int(starts[-1]))
        index = dict(zip(distinct, count()))
        word_of = np.fromiter(map(index.__getitem__, words.tokens), np.intp, len(words.tokens))
        # Gather each token's run [first, first + width) of `flat`, in token order.
        run = width[word_of]
        ends = np.cumsum(run)
        shift = np.repeat(starts[1:][word_of] - ends, run)
        positions = np.arange(int(ends[-1]) if ends.size else 0) + shift
        pairs = np.repeat(words.row_of, run), flat[positions]
        return pairs[0], pairs[1], _WordColumns(flat, starts, word_of)

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


def weigh_many(
    block: Block, rows: np.ndarray, columns: np.ndarray, values: np.ndarray, n_rows: int
) -> np.ndarray:
    """`weigh` for the entries of many rows at once (`rows` gives each entry's row), in place.

    Returns each row's scale: what its idf-weighted values were multiplied by.
    """
    if block.binary:
        values[:] = 1.0
    elif block.sublinear_tf:
        np.log(values, out=values)
        values += 1.0
    if block.idf is not None:
        values *= block.idf[columns - block.offset]
    if block.norm is None:
        scale = np.full(n_rows, block.weight)
    else:
        sizes = values * values if block.norm == "l2" else np.abs(values)
        # astype: for no entries at all bincount returns integers.
        norms = np.bincount(rows, weights=sizes, minlength=n_rows).astype(np.float64, copy=False)
        if block.norm == "l2":
            np.sqrt(norms, out=norms)
        scale = np.full(n_rows, block.weight)
        np.divide(block.weight, norms, out=scale, where=norms > 0.0)
    values *= scale[rows]
    return scale


def _batchable(block: Block) -> bool:
    """Whether `Featurizer` may count this block's n-grams a batch at a time.

    `normalize_product_name` leaves words of letters, digits and "." separated by
    single spaces, so `tokenize`, `split_tokens` and char_wb's own word split
    all equal `str.split` on its output; other preprocessors promise nothing.
    """
    if block.preprocess is not normalize_product_name:
        return False
    if isinstance(block.count, WordNgrams):
        return block.count.tokenize is tokenize or block.count.tokenize is split_tokens
    return isinstance(block.count, CharWbNgrams)


# From this many names on, counting a batch at a time beats the per-name loop
# (whose cost is per name; the batch's numpy calls have a fixed cost too).
_BATCH_MIN = 8


class Featurizer:
    """Turns names into TF-IDF rows over the concatenated columns of all blocks."""

    def __init__(self, blocks: Sequence[Block]) -> None:
        self.blocks = tuple(blocks)
        self._batchable = bool(self.blocks) and all(map(_batchable, self.blocks))

    def rows(
        self, names: Sequence[str], docs: list[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray, list[int] | np.ndarray, np.ndarray]:
        """CSR parts of the names' rows (column indices, values, row pointers) and word coverage.

        Word coverage is the share of each name's word n-grams found in the word
        blocks' vocabularies (`app.ml.scope`); it costs two additions per name.
        With `docs`, each name's text as the char_wb blocks read it (preprocessed,
        for `app.ml.explain`) is appended to it.
        """
        if docs is None and self._batchable and len(names) >= _BATCH_MIN:
            rows = self._batch(names, factor=False)
            return rows.columns, rows.values, rows.indptr, rows.coverage
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

    def batch(self, names: Sequence[str]) -> BatchRows | None:
        """The names' rows with char_wb blocks as `WordSums`; None where `rows` must serve."""
        if not self._batchable or len(names) < _BATCH_MIN:
            return None
        return self._batch(names, factor=True)

    def _batch(self, names: Sequence[str], *, factor: bool) -> BatchRows:
        """`rows` for batchable blocks: each step runs once over the whole batch.

        The same counts and arithmetic as the per-name loop; only the order in
        which a row's terms are summed differs, which moves values by an ulp.
        With `factor`, char_wb blocks come as `WordSums` (and corrections).
        """
        n = len(names)
        words = _Words.split(normalize_many(names))
        keys: list[np.ndarray] = []
        hits = np.zeros(n, dtype=np.intp)
        grams = np.zeros(n, dtype=np.intp)
        distinct: dict[int, _WordColumns] = {}
        for index, block in enumerate(self.blocks):
            count = block.count
            if isinstance(count, WordNgrams):
                rows, columns, totals = count.count_many(words)
                hits += np.bincount(rows, minlength=n)
                grams += totals
            else:
                assert isinstance(count, CharWbNgrams)  # by _batchable
                rows, columns, distinct[index] = count.count_many(words)
            keys.append((rows.astype(np.int64) << _ROW_SHIFT) | columns)
        # One sort counts repeated (row, column) pairs and leaves the rows in CSR order.
        unique, counts = np.unique(np.concatenate(keys), return_counts=True)
        rows = (unique >> _ROW_SHIFT).astype(np.intp)
        columns = (unique & _COLUMN_MASK).astype(np.intp)
        values = counts.astype(np.float64)
        keep = np.ones(values.shape[0], dtype=bool)
        word_sums: list[WordSums] = []
        for index, block in enumerate(self.blocks):
            start = block.offset
            inside = (columns >= start) & (columns < start + len(block.count.vocabulary))
            part = values[inside]
            block_rows = rows[inside]
            scale = weigh_many(block, block_rows, columns[inside], part, n)
            if factor and index in distinct:
                word_sums.append(self._word_sums(block, distinct[index], words, scale))
                # What the word sums do not hold: f(count) - count times idf and scale.
                idf = self._idf(block, columns[inside])
                part -= counts[inside] * idf * scale[block_rows]
                keep[inside] = part != 0.0
            values[inside] = part
        indptr = np.zeros(n + 1, dtype=np.intp)
        np.cumsum(np.bincount(rows[keep], minlength=n), out=indptr[1:])
        if not keep.all():
            columns, values = columns[keep], values[keep]
        return BatchRows(columns, values, indptr, coverage(hits, grams), tuple(word_sums))

    @staticmethod
    def _idf(block: Block, columns: np.ndarray) -> np.ndarray:
        if block.idf is None:
            return np.ones(columns.shape[0])
        idf: np.ndarray = block.idf[columns - block.offset]
        return idf

    def _word_sums(
        self, block: Block, distinct: _WordColumns, words: _Words, scale: np.ndarray
    ) -> WordSums:
        token_starts = np.zeros(words.lengths.shape[0] + 1, dtype=np.intp)
        np.cumsum(words.lengths, out=token_starts[1:])
        return WordSums(
            columns=distinct.columns,
            idf=self._idf(block, distinct.columns),
            starts=distinct.starts,
            words=distinct.word_of,
            scales=scale[words.row_of],
            token_starts=token_starts,
        )

    def clear_word_cache(self) -> None:
        """Forget the memoised per-word columns (benchmarks time the cold path with it)."""
        for block in self.blocks:
            if isinstance(block.count, CharWbNgrams):
                block.count.word_columns.clear()
