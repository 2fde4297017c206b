"""Each client's usage, counted from the prediction log and its daily sums."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.crud import prediction_log as log_crud
from app.crud.prediction_log import LogFilter


@dataclass(frozen=True)
class UsageCounts:
    """Scoring requests and predicted names of one client in a window, and its latest one."""

    requests: int
    predictions: int
    last_prediction_at: datetime | None

    @classmethod
    def none(cls) -> UsageCounts:
        """No logged prediction in the window."""
        return cls(requests=0, predictions=0, last_prediction_at=None)


def usage_since(
    session: Session, *, since: datetime, client_id: str | None = None
) -> dict[str, UsageCounts]:
    """Per client id (or only `client_id`), usage from `since` until now.

    Whole days come from the daily sums, so a month costs a few hundred summed
    rows rather than every logged name; a request is counted once, at its first
    name (item 0), whatever request id a client sent.
    """
    where = LogFilter(client_id=client_id, since=since, until=datetime.now(UTC))
    latest = log_crud.latest_per_client(session, client_id)
    return {
        group.key: UsageCounts(
            requests=group.requests,
            predictions=group.count,
            last_prediction_at=latest.get(group.key),
        )
        for group in log_crud.grouped_over(session, where, "client_id")
    }
