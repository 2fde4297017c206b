"""Entry point of a training job's own process: `python -m app.services.job_runner JOB_ID`."""

from __future__ import annotations

import logging
import os
import sys

from app.core.logging import configure_logging
from app.db.session import create_db_engine, create_session_factory
from app.services.jobs import execute_job, settings_from_environment

logger = logging.getLogger("app.services.job_runner")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m app.services.job_runner JOB_ID\n")
        return 2
    settings = settings_from_environment()
    configure_logging(settings)
    # Lower priority than the web workers: predictions must keep flowing.
    os.nice(10)
    engine = create_db_engine(settings.database_url)
    try:
        job = execute_job(create_session_factory(engine), settings, argv[0])
    finally:
        engine.dispose()
    logger.info("training job finished", extra={"job_id": job.job_id, "status": job.status})
    return 0 if job.status == "succeeded" else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
