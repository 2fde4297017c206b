"""Why a name got its category: the terms that pushed the score up and those that pulled it down.

Read straight from the fast scorer's folded linear weights. A feature's
contribution is ``x_j * (a_jk - sum_i q_i a_ji)``: its value times how much more
it adds to the predicted category ``k``'s evidence than to the alternatives',
weighted by their probabilities ``q`` (renormalised without ``k``). The sum over
a name's features is the predicted category's lead, in logit units, over the
alternatives the model weighed. Character n-grams are credited to the words
they come from (shared equally between repeated occurrences), so a reviewer
reads words and word pairs, not fragments like " su".

numpy alone, like the rest of the serving path.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from app.ml.fast_features import Block, CharWbNgrams

__all__ = ["EXPLAIN_TERMS", "Explanation", "Explainer", "TermContribution"]

# Terms shown on each side (pushing up, pulling down).
EXPLAIN_TERMS = 5


@dataclass(frozen=True)
class TermContribution:
    """A word or word pair of the name and its contribution (logit units)."""

    term: str
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """The terms that raised the predicted category's score most, and those that lowered it."""

    category: str
    supporting: list[TermContribution]
    opposing: list[TermContribution]


class Explainer:
    """Explains one scorer's predictions; built once per loaded version, on first use."""

    def __init__(
        self, blocks: Sequence[Block], weights: np.ndarray, evidence: np.ndarray | None
    ) -> None:
        self._blocks = tuple(blocks)
        self._weights = weights
        # (n_outputs, n_classes) map from outputs to per-class evidence; None = identity.
        self._evidence = evidence
        self._terms: list[str] | None = None
        self._lock = threading.Lock()

    def _term_list(self) -> list[str]:
        # The inverse vocabulary costs a pointer per feature: made only when asked.
        with self._lock:
            if self._terms is None:
                terms = [""] * self._weights.shape[0]
                for block in self._blocks:
                    for term, column in block.count.vocabulary.items():
                        terms[column] = term
                self._terms = terms
            return self._terms

    def explain(
        self,
        doc: str,
        columns: np.ndarray,
        values: np.ndarray,
        rows: np.ndarray,
        proba: np.ndarray,
        classes: np.ndarray,
        limit: int = EXPLAIN_TERMS,
    ) -> Explanation:
        """Explain a name from its scoring: its preprocessed `doc`, feature `columns` and
        `values`, their weight `rows` (``weights[columns]``) and its probabilities."""
        k = int(np.argmax(proba))
        if self._evidence is not None:
            rows = rows @ self._evidence
        others = np.array(proba, dtype=np.float64)
        others[k] = 0.0
        total = others.sum()
        if total > 0:
            others /= total
        else:
            others[:] = 1.0 / max(1, others.size - 1)
            others[k] = 0.0
        contributions = values * (rows[:, k] - rows @ others)
        by_term = self._group(doc, columns.tolist(), contributions.tolist())
        ranked = sorted(by_term.items(), key=lambda item: item[1], reverse=True)
        supporting = [TermContribution(t, c) for t, c in ranked[:limit] if c > 0]
        opposing = [TermContribution(t, c) for t, c in reversed(ranked[-limit:]) if c < 0]
        return Explanation(str(classes[k]), supporting, opposing)

    def _group(self, doc: str, columns: list[int], contributions: list[float]) -> dict[str, float]:
        """Contributions summed per word or word pair of the name.

        Plain Python: a name has about a hundred features, too few for numpy's
        per-call cost to pay off. The scorer lists a name's columns block by
        block, so each block's are one slice, found by bisection.
        """
        grouped: dict[str, float] = {}
        words: list[str] | None = None
        for block in self._blocks:
            count = block.count
            first = bisect_left(columns, block.offset)
            last = bisect_left(columns, block.offset + len(count.vocabulary), first)
            if first == last:
                continue
            mine = dict(zip(columns[first:last], contributions[first:last], strict=True))
            if isinstance(count, CharWbNgrams):
                words = doc.split() if words is None else words
                _credit_words(count, words, mine, grouped)
                continue
            # Word n-grams are terms already; plain char n-grams may span words.
            terms = self._term_list()
            for column, value in mine.items():
                term = terms[column].strip()
                grouped[term] = grouped.get(term, 0.0) + value
        return grouped


def _credit_words(
    count: CharWbNgrams, words: list[str], share: dict[int, float], grouped: dict[str, float]
) -> None:
    """Share each char_wb n-gram's contribution equally among its occurrences in the words."""
    per_word = [count.columns_of(word) for word in words]
    occurrences = Counter(chain.from_iterable(per_word))
    per_occurrence = {column: share[column] / n for column, n in occurrences.items()}
    for word, columns in zip(words, per_word, strict=True):
        if columns:
            grouped[word] = grouped.get(word, 0.0) + sum(map(per_occurrence.__getitem__, columns))
