"""Review states shared by the database, the API and the services."""

from __future__ import annotations

from enum import StrEnum


class FeedbackStatus(StrEnum):
    """Where a feedback row is in review; only `accepted` rows reach training."""

    proposed = "proposed"
    accepted = "accepted"
    rejected = "rejected"
