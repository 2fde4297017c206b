"""Entry point of a training job's own process.

    python -m app.services.job_runner JOB_ID SETTINGS_FILE

SETTINGS_FILE is the 0600 JSON file the launcher wrote (secrets included); it is
read and deleted at once, so no secret travels through the environment or argv.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from app.core.errors import NotFound
from app.core.logging import configure_logging
from app.db.session import create_db_engine, create_session_factory
from app.services.jobs import execute_job, read_settings_file

logger = logging.getLogger("app.services.job_runner")

# Exit status of a job process that stopped because its job was cancelled or timed out.
ABANDONED_EXIT_STATUS = 3


def abandon() -> None:
    """Leave at once: the job was cancelled or timed out (called from the heartbeat thread)."""
    logger.warning("training job abandoned: cancelled or timed out")
    logging.shutdown()
    # The main thread may be deep in a fit; nothing it would still write is wanted.
    os._exit(ABANDONED_EXIT_STATUS)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m app.services.job_runner JOB_ID SETTINGS_FILE\n")
        return 2
    job_id, settings_file = argv
    settings = read_settings_file(Path(settings_file))
    configure_logging(settings)
    # Lower priority than the web workers: predictions must keep flowing.
    os.nice(10)
    engine = create_db_engine(settings.database_url)
    try:
        job = execute_job(create_session_factory(engine), settings, job_id, on_abandoned=abandon)
    except NotFound as exc:
        # Cancelled (or reaped) before this process got to start it.
        logger.warning("training job not started", extra={"job_id": job_id, "reason": str(exc)})
        return ABANDONED_EXIT_STATUS
    finally:
        engine.dispose()
    logger.info("training job finished", extra={"job_id": job.job_id, "status": job.status})
    return 0 if job.status == "succeeded" else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
