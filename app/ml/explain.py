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
        name: str,
        columns: np.ndarray,
        values: np.ndarray,
        proba: np.ndarray,
        classes: np.ndarray,
        limit: int = EXPLAIN_TERMS,
    ) -> Explanation:
        """Explain `name`, whose feature `columns`/`values` scored `proba`."""
        k = int(np.argmax(proba))
        rows = np.asarray(self._weights[columns], dtype=np.float64)
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
        by_term = self._group(name, columns, contributions)
        ranked = sorted(by_term.items(), key=lambda item: item[1], reverse=True)
        supporting = [TermContribution(t, c) for t, c in ranked[:limit] if c > 0]
        opposing = [TermContribution(t, c) for t, c in reversed(ranked[-limit:]) if c < 0]
        return Explanation(str(classes[k]), supporting, opposing)

    def _group(self, name: str, columns: np.ndarray, contributions: np.ndarray) -> dict[str, float]:
        """Contributions summed per word or word pair of the name."""
        grouped: dict[str, float] = {}
        docs: dict[object, str] = {}
        for block in self._blocks:
            count = block.count
            inside = (columns >= block.offset) & (columns < block.offset + len(count.vocabulary))
            if not inside.any():
                continue
            mine, values = columns[inside], contributions[inside]
            if isinstance(count, CharWbNgrams):
                doc = docs.get(block.preprocess)
                if doc is None:
                    doc = docs[block.preprocess] = block.preprocess(name)
                _credit_words(count, doc.split(), mine, values, grouped)
            else:
                # Word n-grams are terms already; plain char n-grams may span words.
                terms = self._term_list()
                for column, value in zip(mine.tolist(), values.tolist(), strict=True):
                    term = terms[column].strip()
                    grouped[term] = grouped.get(term, 0.0) + value
        return grouped


def _credit_words(
    count: CharWbNgrams,
    words: list[str],
    columns: np.ndarray,
    values: np.ndarray,
    grouped: dict[str, float],
) -> None:
    """Share each char_wb n-gram's contribution among the words it occurs in."""
    per_word = [count.columns_of(word) for word in words]
    flat = np.fromiter(chain.from_iterable(per_word), dtype=np.intp)
    if flat.size == 0:
        return
    owner = np.repeat(np.arange(len(words)), [len(c) for c in per_word])
    # Every column of a word's n-grams is one of the name's features: find its position.
    order = np.argsort(columns)
    position = order[np.searchsorted(columns[order], flat)]
    occurrences = np.bincount(position, minlength=columns.size)
    credit = np.bincount(
        owner, weights=values[position] / occurrences[position], minlength=len(words)
    )
    for word, value in zip(words, credit.tolist(), strict=True):
        if value:
            grouped[word] = grouped.get(word, 0.0) + value
