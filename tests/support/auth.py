"""Clients registered straight through the service layer, and the tokens they get."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote_plus

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.services.clients import ClientRecord, ClientService
from app.services.runtime import Runtime


class Registry:
    """Registers clients straight through the service layer of a running app."""

    def __init__(self, app: FastAPI) -> None:
        self._runtime: Runtime = app.state.runtime

    @contextmanager
    def _clients(self) -> Iterator[ClientService]:
        runtime = self._runtime
        with runtime.session() as session:
            yield ClientService(session, runtime.hasher, runtime.dummy_hash)

    def add(
        self,
        client_id: str = "svc",
        secret: str = "correct-horse-battery",
        scopes: str = "predict train",
    ) -> ClientRecord:
        with self._clients() as clients:
            record, _ = clients.register(
                name=f"{client_id} app", client_id=client_id, secret=secret, scopes=scopes
            )
        return record

    def deactivate(self, client_id: str) -> None:
        with self._clients() as clients:
            clients.set_active(client_id, active=False)

    def activate(self, client_id: str) -> None:
        with self._clients() as clients:
            clients.set_active(client_id, active=True)

    def rotate(self, client_id: str) -> str:
        with self._clients() as clients:
            return clients.rotate_secret(client_id)

    def delete(self, client_id: str) -> None:
        with self._clients() as clients:
            clients.delete(client_id)


def basic_auth(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1 Basic credentials: form-encode, then base64."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def request_token(
    client: TestClient | httpx.Client,
    client_id: str = "svc",
    secret: str = "correct-horse-battery",
    *,
    scope: str | None = None,
    method: str = "post",
) -> httpx.Response:
    """POST /auth/token with client_secret_post or client_secret_basic."""
    data = {"grant_type": "client_credentials"}
    headers = {}
    if method == "post":
        data |= {"client_id": client_id, "client_secret": secret}
    else:
        headers["Authorization"] = basic_auth(client_id, secret)
    if scope is not None:
        data["scope"] = scope
    return client.post("/auth/token", data=data, headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_for(client: TestClient, client_id: str = "svc", **kwargs: object) -> str:
    response = request_token(client, client_id, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
