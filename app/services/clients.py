"""The client registry: register, authenticate, revoke. Used by the API and the CLI."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pwdlib import PasswordHash
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import ClientAlreadyExists, ClientNotFound, InvalidClient, InvalidClientData
from app.core.scopes import DEFAULT_CLIENT_SCOPES, Scope, format_scopes, parse_scopes
from app.core.security import generate_client_secret
from app.crud import client as client_crud
from app.db.models import Client

MIN_SECRET_LENGTH = 12
# Argon2 hashes whatever it is given; the cap only stops megabyte "secrets".
MAX_SECRET_LENGTH = 512
MAX_CLIENT_ID_LENGTH = 128
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class ClientRecord:
    """A registered client as the rest of the service sees it (never the secret hash)."""

    client_id: str
    name: str
    scopes: tuple[Scope, ...]
    is_active: bool
    created_at: datetime
    last_used_at: datetime | None
    tokens_valid_after: datetime

    @classmethod
    def from_row(cls, row: Client) -> ClientRecord:
        """Copy the public columns of an ORM row."""
        return cls(
            client_id=row.client_id,
            name=row.name,
            scopes=parse_scopes(row.scopes),
            is_active=row.is_active,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            tokens_valid_after=row.tokens_valid_after,
        )


class ClientService:
    """Client registry operations; each public method is one transaction."""

    def __init__(
        self, session: Session, hasher: PasswordHash, dummy_hash: str | None = None
    ) -> None:
        self._session = session
        self._hasher = hasher
        # Unknown ids are checked against this hash so they cost as long as known ones.
        self._dummy_hash = dummy_hash

    def register(
        self,
        *,
        name: str,
        client_id: str,
        secret: str | None = None,
        scopes: str | None = None,
    ) -> tuple[ClientRecord, str]:
        """Create a client; returns it with its secret (generated when none is given)."""
        client_id = _validated_client_id(client_id)
        name = _validated_name(name)
        secret = _validated_secret(secret) if secret is not None else generate_client_secret()
        scope_text = _validated_scopes(
            scopes if scopes is not None else format_scopes(DEFAULT_CLIENT_SCOPES)
        )
        if client_crud.get_client(self._session, client_id=client_id) is not None:
            raise ClientAlreadyExists(f"A client with id {client_id!r} already exists.")
        row = client_crud.create_client(
            self._session,
            client_id=client_id,
            name=name,
            secret_hash=self._hasher.hash(secret),
            scopes=scope_text,
            now=_now(),
            tokens_valid_after=_whole_second(),
        )
        try:
            self._session.commit()
        except IntegrityError as exc:
            # Another process registered the same id between our check and commit.
            self._session.rollback()
            raise ClientAlreadyExists(f"A client with id {client_id!r} already exists.") from exc
        return ClientRecord.from_row(row), secret

    def list(self) -> list[ClientRecord]:
        """Every registered client."""
        return [ClientRecord.from_row(row) for row in client_crud.list_clients(self._session)]

    def get(self, client_id: str) -> ClientRecord:
        """One client; ClientNotFound when the id is unknown."""
        return ClientRecord.from_row(self._require(client_id))

    def set_active(self, client_id: str, *, active: bool) -> ClientRecord:
        """Activate or deactivate; deactivation revokes every outstanding token."""
        row = self._require(client_id)
        row.is_active = active
        if not active:
            row.tokens_valid_after = _revocation_instant()
        self._session.commit()
        return ClientRecord.from_row(row)

    def rotate_secret(self, client_id: str, secret: str | None = None) -> str:
        """Replace the secret (generated unless given) and revoke outstanding tokens."""
        row = self._require(client_id)
        secret = _validated_secret(secret) if secret is not None else generate_client_secret()
        row.secret_hash = self._hasher.hash(secret)
        row.tokens_valid_after = _revocation_instant()
        self._session.commit()
        return secret

    def set_scopes(self, client_id: str, scopes: str) -> ClientRecord:
        """Replace the allowed scopes; outstanding tokens are revoked so none keeps old rights."""
        row = self._require(client_id)
        row.scopes = _validated_scopes(scopes)
        row.tokens_valid_after = _revocation_instant()
        self._session.commit()
        return ClientRecord.from_row(row)

    def delete(self, client_id: str) -> None:
        """Remove the client; its tokens stop working once revocation caches refresh."""
        if not client_crud.delete_client(self._session, client_id=client_id):
            self._session.rollback()
            raise ClientNotFound(f"No client with id {client_id!r}.")
        self._session.commit()

    def authenticate(self, client_id: str, secret: str) -> ClientRecord:
        """The active client whose secret matches; InvalidClient otherwise, in equal time."""
        row = client_crud.get_client(self._session, client_id=client_id)
        if row is None:
            if self._dummy_hash is None:
                self._dummy_hash = self._hasher.hash(generate_client_secret())
            self._hasher.verify(secret, self._dummy_hash)
            raise InvalidClient()
        valid, new_hash = self._hasher.verify_and_update(secret, row.secret_hash)
        if not valid or not row.is_active:
            raise InvalidClient()
        if new_hash is not None:
            row.secret_hash = new_hash
        row.last_used_at = _now()
        self._session.commit()
        return ClientRecord.from_row(row)

    def _require(self, client_id: str) -> Client:
        row = client_crud.get_client(self._session, client_id=client_id)
        if row is None:
            raise ClientNotFound(f"No client with id {client_id!r}.")
        return row


def _now() -> datetime:
    return datetime.now(UTC)


def _whole_second() -> datetime:
    # JWT `iat` has whole-second resolution, so revocation instants do too.
    return datetime.fromtimestamp(math.floor(_now().timestamp()), UTC)


def _revocation_instant() -> datetime:
    # Revoke everything issued up to and including this second; the token service
    # waits out the rest of the second before issuing again, so new tokens are
    # never caught by it.
    return _whole_second() + timedelta(seconds=1)


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


def _validated_client_id(client_id: str) -> str:
    if not client_id or client_id != client_id.strip():
        raise InvalidClientData("Client id must be non-empty without surrounding whitespace.")
    if len(client_id) > MAX_CLIENT_ID_LENGTH:
        raise InvalidClientData(f"Client id is longer than {MAX_CLIENT_ID_LENGTH} characters.")
    if _has_control_characters(client_id):
        raise InvalidClientData("Client id contains control characters.")
    return client_id


def _validated_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or _has_control_characters(name):
        raise InvalidClientData(f"Name must be 1-{MAX_NAME_LENGTH} printable characters.")
    return name


def _validated_secret(secret: str) -> str:
    if len(secret) < MIN_SECRET_LENGTH:
        raise InvalidClientData(f"Client secret must be at least {MIN_SECRET_LENGTH} characters.")
    if len(secret) > MAX_SECRET_LENGTH:
        raise InvalidClientData(f"Client secret must be at most {MAX_SECRET_LENGTH} characters.")
    if _has_control_characters(secret):
        raise InvalidClientData("Client secret contains control characters.")
    return secret


def _validated_scopes(scopes: str) -> str:
    try:
        parsed = parse_scopes(scopes)
    except ValueError as exc:
        allowed = ", ".join(s.value for s in Scope)
        raise InvalidClientData(f"{exc} (allowed: {allowed})") from exc
    if not parsed:
        raise InvalidClientData("A client needs at least one scope.")
    return format_scopes(parsed)
