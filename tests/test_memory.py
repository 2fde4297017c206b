"""Memory a worker freed goes back to the operating system, as a model load needs."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from tests.support import REPO_ROOT

# Fragments the heap the way a model load does: many buffers (above pymalloc's 512
# bytes, so from the C heap), most freed, a few survivors scattered among them so
# the freed pages are not at the heap's top (where glibc would release them even
# without a trim).
_PROBE = """
import json
from app.core.memory import release_free_memory

def anonymous_kib():
    for line in open("/proc/self/smaps_rollup"):
        if line.startswith("Anonymous:"):
            return int(line.split()[1])

objects = [bytearray(2000) for _ in range(30_000)]
survivors = objects[::50]
del objects
before = anonymous_kib()
released = release_free_memory()
print(json.dumps({"released": released, "before": before, "after": anonymous_kib()}))
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="malloc_trim is glibc's; elsewhere release_free_memory() does nothing",
)
def test_freed_heap_pages_go_back_to_the_operating_system() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    probe = json.loads(result.stdout)
    assert probe["released"] is True
    # About 60 MB of buffers were freed; most of it must leave the process.
    assert probe["before"] - probe["after"] > 20 * 1024, probe
