"""A local Dask cluster for the tests of the distributed paths (scoring and training).

Not re-exported from `tests.support`: only these modules should pay for importing
`distributed`.
"""

from __future__ import annotations

from distributed import LocalCluster

# Generous: two worker processes start on a loaded 2-core machine.
CLUSTER_TIMEOUT = "120s"


def local_cluster(workers: int = 2) -> LocalCluster:
    """`workers` worker processes of one thread each, on the loopback interface."""
    return LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        timeout=CLUSTER_TIMEOUT,
    )
