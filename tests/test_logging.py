"""Log lines are written off the request path and none is lost on the way out."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from app.core.config import Settings
from app.core.logging import configure_logging, flush_logs, output_handler, stop_log_writer
from tests.support import REPO_ROOT


@pytest.fixture
def buffer() -> Iterator[io.StringIO]:
    configure_logging(Settings(_env_file=None, log_format="text", log_level="INFO"))
    handler = output_handler()
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)
    yield stream
    stop_log_writer()


def test_a_slow_output_does_not_hold_up_the_thread_that_logs(buffer: io.StringIO) -> None:
    handler = output_handler()
    assert isinstance(handler, logging.StreamHandler)
    writing = threading.Event()
    release = threading.Event()

    class Stuck(io.StringIO):
        def write(self, text: str) -> int:
            writing.set()
            # A stderr pipe nobody reads: the writer thread waits here, not the caller.
            release.wait(timeout=60)
            return buffer.write(text)

    handler.setStream(Stuck())
    logger = logging.getLogger("app.test")
    logger.info("first")
    assert writing.wait(timeout=60)
    for n in range(100):
        logger.info("queued %d", n)
    # Every call above returned while the output was blocked.
    assert "first" not in buffer.getvalue()
    release.set()
    flush_logs()
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 101
    assert lines[0].endswith("app.test: first")
    assert lines[-1].endswith("app.test: queued 99")


def test_records_from_many_threads_each_arrive_once_as_one_line(buffer: io.StringIO) -> None:
    logger = logging.getLogger("app.test")

    def burst(thread: int) -> None:
        for n in range(500):
            logger.info("line", extra={"worker": thread, "n": n})

    threads = [threading.Thread(target=burst, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    flush_logs()
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2000
    assert len(set(lines)) == 2000
    assert sum("worker=3 n=499" in line for line in lines) == 1


def test_the_timestamp_is_logging_s_own_format_with_milliseconds(buffer: io.StringIO) -> None:
    logging.getLogger("app.test").warning("stamped")
    flush_logs()
    line = buffer.getvalue().strip()
    stamp = time.strftime("%Y-%m-%d", time.localtime())
    assert line.startswith(stamp)
    date, clock, level, rest = line.split(" ", 3)
    assert len(clock) == len("12:34:56,789") and clock[8] == ","
    assert (level, rest) == ("WARNING", "app.test: stamped")


@pytest.mark.parametrize("leave", ["return", "os._exit after stop_log_writer"])
def test_lines_still_queued_at_exit_are_written(leave: str) -> None:
    # A process that logs and leaves at once: the atexit drain (or the explicit
    # one a job runs before os._exit) must write every queued line.
    exit_code = "import os; stop_log_writer(); os._exit(0)" if "os._exit" in leave else ""
    program = (
        "import logging\n"
        "from app.core.config import Settings\n"
        "from app.core.logging import configure_logging, stop_log_writer\n"
        "configure_logging(Settings(_env_file=None, log_format='json', log_level='INFO'))\n"
        "for n in range(3000):\n"
        "    logging.getLogger('app.exit').info('queued', extra={'n': n})\n"
        f"{exit_code}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = done.stderr.splitlines()
    assert len(lines) == 3000
    assert '"n": 2999' in lines[-1]


def test_a_forked_child_writes_its_own_lines_and_none_of_its_parents_twice() -> None:
    # Gunicorn forks its workers from a master that configured logging, and bulk
    # scoring forks its workers too; the writer thread does not survive a fork.
    program = (
        "import logging, os\n"
        "from app.core.config import Settings\n"
        "from app.core.logging import configure_logging, stop_log_writer\n"
        "configure_logging(Settings(_env_file=None, log_format='json', log_level='INFO'))\n"
        "log = logging.getLogger('app.fork')\n"
        "for n in range(2000):\n"
        "    log.info('parent before', extra={'n': n})\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    for n in range(500):\n"
        "        log.info('child', extra={'n': n})\n"
        "    stop_log_writer()\n"
        "    os._exit(0)\n"
        "os.waitpid(child, 0)\n"
        "log.info('parent after')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    messages = [json.loads(line)["message"] for line in done.stderr.splitlines()]
    assert messages.count("parent before") == 2000
    assert messages.count("child") == 500
    assert messages.count("parent after") == 1
    assert len(messages) == 2501
