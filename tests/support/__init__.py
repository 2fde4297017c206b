"""Helpers the tests share: paths, databases and settings, clients and tokens, live servers.

Test modules import from here (`from tests.support import ...`); `tests/conftest.py`
holds only fixtures and hooks. Polling helpers are in `tests/polling.py`.
"""

from tests.support.api import (
    SUSU,
    Api,
    InProcess,
    alive,
    assert_search_chose_the_best,
    csv_bytes,
    open_api,
    predict_batch,
    serve,
    shipped_rows,
)
from tests.support.auth import Registry, basic_auth, bearer, request_token, token_for
from tests.support.databases import (
    BACKEND,
    LIVE_SCHEMAS,
    POSTGRES_URL,
    database_url_for,
    drop_postgres_schema,
    install_model,
    live_database_url,
    make_settings,
    new_postgres_schema,
    postgres_unavailable_reason,
)
from tests.support.live import LiveServer, free_port, start_server
from tests.support.paths import (
    REPO_ROOT,
    SHIPPED_CSV,
    TEST_SECRET_KEY,
    TINY_CSV,
    readme_bash_block,
)
from tests.support.processes import child_pids
from tests.support.redis_server import REDIS_URL, redis_available

__all__ = [
    "BACKEND",
    "LIVE_SCHEMAS",
    "POSTGRES_URL",
    "REDIS_URL",
    "REPO_ROOT",
    "SHIPPED_CSV",
    "SUSU",
    "TEST_SECRET_KEY",
    "TINY_CSV",
    "Api",
    "InProcess",
    "LiveServer",
    "Registry",
    "alive",
    "assert_search_chose_the_best",
    "basic_auth",
    "bearer",
    "child_pids",
    "csv_bytes",
    "database_url_for",
    "drop_postgres_schema",
    "free_port",
    "install_model",
    "live_database_url",
    "make_settings",
    "redis_available",
    "new_postgres_schema",
    "open_api",
    "predict_batch",
    "readme_bash_block",
    "serve",
    "postgres_unavailable_reason",
    "request_token",
    "shipped_rows",
    "start_server",
    "token_for",
]
