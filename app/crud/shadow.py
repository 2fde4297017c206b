"""Shadow runs and what every worker compared during them (app/services/shadow.py).

Workers add their tallies with upserts (`count = count + excluded.count`), so
the totals are exact whatever the number of workers and replicas: nothing is
read, added up in Python and written back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.db.models import ShadowExample, ShadowFlip, ShadowLatency, ShadowRun, ShadowScores

_FLIP: Table = ShadowFlip.__table__  # type: ignore[assignment]
_SCORES: Table = ShadowScores.__table__  # type: ignore[assignment]
_LATENCY: Table = ShadowLatency.__table__  # type: ignore[assignment]
K = TypeVar("K")


@dataclass
class Tally:
    """What one worker compared for one run and has not written yet.

    flips: (active category, candidate category) -> items.
    scores: (side, score bin) -> [items, score sum, needs review, out of scope].
    latency: latency bin -> [items, seconds].
    examples: (active category, candidate category) -> names, for flips only.
    """

    flips: dict[tuple[str, str], int]
    scores: dict[tuple[str, int], list[float]]
    latency: dict[int, list[float]]
    examples: dict[tuple[str, str], list[str]]

    @classmethod
    def empty(cls) -> Tally:
        """A tally with nothing in it."""
        return cls({}, {}, {}, {})

    def __bool__(self) -> bool:
        return bool(self.flips)

    def merge(self, other: Tally, examples_per_flip: int) -> None:
        """Add `other` to this tally (a write that failed is retried with the next one)."""
        for key, items in other.flips.items():
            self.flips[key] = self.flips.get(key, 0) + items
        _add_sums(self.scores, other.scores)
        _add_sums(self.latency, other.latency)
        for flip, names in other.examples.items():
            kept = self.examples.setdefault(flip, [])
            kept.extend(names[: max(0, examples_per_flip - len(kept))])


def _add_sums(mine: dict[K, list[float]], theirs: dict[K, list[float]]) -> None:
    for key, sums in theirs.items():
        kept = mine.setdefault(key, [0.0] * len(sums))
        for i, value in enumerate(sums):
            kept[i] += value


def open_run(session: Session) -> ShadowRun | None:
    """The run open now, if any (at most one is)."""
    return session.scalars(select(ShadowRun).where(ShadowRun.open_slot.is_(True))).first()


def latest_run(session: Session, version: str) -> ShadowRun | None:
    """The most recent run of `version`, open or ended."""
    return session.scalars(
        select(ShadowRun)
        .where(ShadowRun.candidate_version == version)
        .order_by(ShadowRun.id.desc())
        .limit(1)
    ).first()


def end_run(session: Session, run_id: int, reason: str, now: datetime) -> bool:
    """End run `run_id` if it is still open; False when another caller ended it first."""
    result = session.execute(
        update(ShadowRun)
        .where(ShadowRun.id == run_id, ShadowRun.open_slot.is_(True))
        .values(ended_at=now, end_reason=reason[:200], open_slot=None)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


def _upsert(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]], added: Sequence[str]
) -> None:
    if not rows:
        return
    key = [column.name for column in table.primary_key.columns]
    dialect_insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = dialect_insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=key,
        set_={name: table.c[name] + statement.excluded[name] for name in added},
    )
    connection.execute(statement, list(rows))


def add_tally(connection: Connection, run_id: int, tally: Tally, examples_per_flip: int) -> None:
    """Add a worker's tally to run `run_id`'s totals, in the caller's transaction."""
    _upsert(
        connection,
        _FLIP,
        [
            {"run_id": run_id, "active_category": a, "candidate_category": c, "items": n}
            for (a, c), n in tally.flips.items()
        ],
        ("items",),
    )
    _upsert(
        connection,
        _SCORES,
        [
            {
                "run_id": run_id,
                "side": side,
                "score_bin": score_bin,
                "items": int(sums[0]),
                "score_sum": sums[1],
                "needs_review": int(sums[2]),
                "out_of_scope": int(sums[3]),
            }
            for (side, score_bin), sums in tally.scores.items()
        ],
        ("items", "score_sum", "needs_review", "out_of_scope"),
    )
    _upsert(
        connection,
        _LATENCY,
        [
            {"run_id": run_id, "latency_bin": b, "items": int(sums[0]), "seconds": sums[1]}
            for b, sums in tally.latency.items()
        ],
        ("items", "seconds"),
    )
    for (active, candidate), names in tally.examples.items():
        flip = (
            ShadowExample.run_id == run_id,
            ShadowExample.active_category == active,
            ShadowExample.candidate_category == candidate,
        )
        kept = connection.execute(select(func.count()).where(*flip)).scalar_one()
        # Workers may race past the bound by a few names; the report shows the first ones.
        room = examples_per_flip - int(kept)
        if room > 0:
            connection.execute(
                insert(ShadowExample),
                [
                    {
                        "run_id": run_id,
                        "active_category": active,
                        "candidate_category": candidate,
                        "product_name": name,
                    }
                    for name in names[:room]
                ],
            )


@dataclass(frozen=True)
class Totals:
    """A run's totals as stored, for the report and the promotion rules."""

    flips: list[tuple[str, str, int]]
    scores: list[tuple[str, int, int, float, int, int]]
    latency: list[tuple[int, int, float]]


def totals(session: Session, run_id: int) -> Totals:
    """Every flip, score bin and latency bin of run `run_id`."""
    flips = session.execute(
        select(ShadowFlip.active_category, ShadowFlip.candidate_category, ShadowFlip.items).where(
            ShadowFlip.run_id == run_id
        )
    )
    scores = session.execute(
        select(
            ShadowScores.side,
            ShadowScores.score_bin,
            ShadowScores.items,
            ShadowScores.score_sum,
            ShadowScores.needs_review,
            ShadowScores.out_of_scope,
        ).where(ShadowScores.run_id == run_id)
    )
    latency = session.execute(
        select(ShadowLatency.latency_bin, ShadowLatency.items, ShadowLatency.seconds).where(
            ShadowLatency.run_id == run_id
        )
    )
    return Totals(
        [(a, c, int(n)) for a, c, n in flips],
        [(s, int(b), int(n), float(t), int(r), int(o)) for s, b, n, t, r, o in scores],
        [(int(b), int(n), float(t)) for b, n, t in latency],
    )


def examples(
    session: Session, run_id: int, flips: Sequence[tuple[str, str]], per_flip: int
) -> dict[tuple[str, str], list[str]]:
    """The first `per_flip` names recorded for each of `flips`."""
    found: dict[tuple[str, str], list[str]] = {flip: [] for flip in flips}
    if not flips:
        return found
    rows = session.execute(
        select(
            ShadowExample.active_category,
            ShadowExample.candidate_category,
            ShadowExample.product_name,
        )
        .where(ShadowExample.run_id == run_id)
        .order_by(ShadowExample.id)
    )
    for active, candidate, name in rows:
        names = found.get((active, candidate))
        if names is not None and len(names) < per_flip:
            names.append(name)
    return found


def end_runs_on_activation(session: Session, version: str, now: datetime) -> None:
    """Activating a version ends the open run: its candidate became the active version,
    or the active side it was compared with changed. The caller commits."""
    run = open_run(session)
    if run is None:
        return
    reason = "activated" if run.candidate_version == version else f"{version} was activated"
    end_run(session, run.id, reason, now)
