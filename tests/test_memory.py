"""Memory a worker freed goes back to the operating system, as a model load needs."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from app.ml.training import TrainedModel
from tests.support import REPO_ROOT
from tests.support.databases import install_model, make_settings

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


# Loads the active version as a worker does, scores batches of new names, and
# reports how much freed heap a trim would still hand back afterwards.
_BATCH_PROBE = """
import json, random, string, sys
from pathlib import Path
from app.core.memory import release_free_memory
from app.core.metrics import setup_metrics
from app.db.database import open_database
from app.services.prediction import PredictionService

def anonymous_kib():
    for line in open("/proc/self/smaps_rollup"):
        if line.startswith("Anonymous:"):
            return int(line.split()[1])

database = open_database(sys.argv[1], migrate=False)
service = PredictionService(database.sessions, Path(sys.argv[2]), setup_metrics())
assert service.sync()
rng = random.Random(7)
def name():
    words = ("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(5))
    return " ".join(words)
for _ in range(5):
    service.predict([name() for _ in range(1000)])
left = anonymous_kib()
release_free_memory()
print(json.dumps({"after_batches": left, "after_trim": anonymous_kib()}))
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="malloc_trim is glibc's; elsewhere release_free_memory() does nothing",
)
def test_a_worker_keeps_no_freed_heap_after_scoring_a_large_batch(
    tmp_path: Path, shipped_model: TrainedModel
) -> None:
    settings = make_settings(tmp_path)
    install_model(settings, shipped_model)
    result = subprocess.run(
        [sys.executable, "-c", _BATCH_PROBE, settings.database_url, str(settings.model_dir)],
        cwd=REPO_ROOT,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    probe = json.loads(result.stdout)
    # Without a trim after each batch, about 8 MiB of the batches' temporaries stay.
    assert probe["after_batches"] - probe["after_trim"] < 2 * 1024, probe
