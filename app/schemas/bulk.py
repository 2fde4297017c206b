"""Shapes of the bulk scoring routes (POST /predictions/bulk and its job)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

BULK_PATH = "/predictions/bulk"


def status_url(job_id: str) -> str:
    """Where a job's status is read."""
    return f"{BULK_PATH}/{job_id}"


class BulkJobAccepted(BaseModel):
    """A bulk job was admitted and its process started; poll `status_url`."""

    job_id: str
    status: str = Field(description="`queued` at first, then `running`.")
    model_version: str = Field(description="The version every row is scored with.")
    status_url: str


class BulkJobOut(BaseModel):
    """A bulk job: its state, its progress while it runs, and where its result is."""

    model_config = ConfigDict(from_attributes=True)

    job_id: str
    status: str = Field(description="`queued`, `running`, `succeeded` or `failed`.")
    model_version: str
    source: str = Field(description="`upload` or `data_path`.")
    data_path: str | None
    rows: int = Field(description="Data rows done so far (scored or refused).")
    bad_rows: int = Field(description="Rows refused (empty, too long, not UTF-8, malformed).")
    rows_per_second: float | None
    eta_seconds: float | None = Field(description="Seconds left at the pace so far.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None = Field(
        description="When the job and its result are deleted (BULK_RESULT_RETENTION_DAYS)."
    )
    error: str | None = Field(description="Why the job failed (or who cancelled it).")
    bytes_read: int = Field(exclude=True)
    total_bytes: int | None = Field(exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def percent(self) -> float:
        """Share of the input read, 0-100 (100 once succeeded)."""
        if self.status == "succeeded":
            return 100.0
        if not self.total_bytes:
            return 0.0
        return round(min(100.0, 100.0 * self.bytes_read / self.total_bytes), 1)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status_url(self) -> str:
        """This job's status."""
        return status_url(self.job_id)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def result_url(self) -> str | None:
        """The result CSV, once the job has succeeded."""
        return f"{status_url(self.job_id)}/result.csv" if self.status == "succeeded" else None
