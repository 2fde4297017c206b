"""First-run set-up for `make run`: .env, database, first model, demo client.

Safe to run every time: each step does nothing when its work is already done.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import TextIO

# Run as `python scripts/bootstrap.py`: make the project importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.config import PROJECT_ROOT, load_settings  # noqa: E402
from app.core.errors import ClientNotFound  # noqa: E402
from app.core.scopes import DEFAULT_CLIENT_SCOPES, format_scopes  # noqa: E402
from app.core.security import build_secret_hasher  # noqa: E402
from app.db.database import open_database  # noqa: E402
from app.services.clients import ClientService  # noqa: E402
from app.services.models import ModelRegistry  # noqa: E402

ENV_FILE = PROJECT_ROOT / ".env"
DEMO_CREDENTIALS = PROJECT_ROOT / ".demo-client.json"
DEMO_CLIENT_ID = "demo-client"


def ensure_env_file() -> None:
    """Write a random SECRET_KEY into .env unless one is set already."""
    existing = ENV_FILE.read_text() if ENV_FILE.exists() else ""
    if any(
        line.startswith("SECRET_KEY=") and line.strip() != "SECRET_KEY="
        for line in existing.splitlines()
    ):
        return
    if os.environ.get("SECRET_KEY"):
        return
    with _private_file(ENV_FILE, os.O_APPEND) as handle:
        if existing and not existing.endswith("\n"):
            handle.write("\n")
        handle.write("# Written by `make run`; see .env.example for every setting.\n")
        handle.write(f"SECRET_KEY={secrets.token_urlsafe(48)}\n")
    print(f"Wrote a random SECRET_KEY to {ENV_FILE.name}")


def _private_file(path: Path, mode_flag: int) -> TextIO:
    """Open `path` for writing, created 0600 and made 0600 before a byte is written.

    Writing first and restricting afterwards would leave the secret readable by
    other users in between (and for good if the process died there).
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | mode_flag, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # a file that existed keeps its mode otherwise
    except OSError:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "w", encoding="utf-8")


def ensure_demo_client(clients: ClientService) -> None:
    """Create the demo client once and save its credentials beside the project."""
    try:
        clients.get(DEMO_CLIENT_ID)
    except ClientNotFound:
        client, secret = clients.register(
            name="Demo client",
            client_id=DEMO_CLIENT_ID,
            scopes=format_scopes(DEFAULT_CLIENT_SCOPES),
        )
        with _private_file(DEMO_CREDENTIALS, os.O_TRUNC) as handle:
            handle.write(
                json.dumps({"client_id": client.client_id, "client_secret": secret}, indent=2)
                + "\n"
            )
        print(f"Created the demo client {DEMO_CLIENT_ID!r}.")
    if DEMO_CREDENTIALS.exists():
        print(f"Demo client credentials: {DEMO_CREDENTIALS}  (cat it to see client_id and secret)")
    else:
        print(
            f"Demo client {DEMO_CLIENT_ID!r} exists but its credentials file is gone; get a new "
            f"secret with: python scripts/manage_clients.py rotate-secret {DEMO_CLIENT_ID}"
        )


def ensure_model(registry: ModelRegistry) -> bool:
    """Train the first model from the shipped data when no version is active."""
    if registry.active() is not None:
        return True
    print("No model yet: training the first one from data/products.csv ...")
    import train  # the same code path as `python train.py`

    return train.main([]) == 0


def main() -> int:
    """Run every first-run step."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="where the server will run")
    args = parser.parse_args()
    # Everything this run creates (.env, the database, the demo credentials, model
    # artifacts) is for this user only.
    os.umask(0o077)
    ensure_env_file()
    settings = load_settings()
    with open_database(settings.database_url, migrate=True) as database:
        with database.sessions() as session:
            if not ensure_model(ModelRegistry(session, settings.model_dir)):
                return 1
        with database.sessions() as session:
            ensure_demo_client(ClientService(session, build_secret_hasher()))
    print(f"Serving on {args.url} (Swagger UI: {args.url}/docs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
