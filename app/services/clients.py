"""The client registry: register, authenticate, change, revoke. Used by the API and the CLI.

Every change is audited in the same transaction as the change itself (see
app/services/audit.py), and no change may leave the service without an active
client holding `admin`, nor let an admin client deactivate, delete or demote
itself. manage_clients.py is the break-glass path: its `--force` lifts the
last-admin rule (an operator with the database can always add an admin client
again), and the forced change is recorded as such.
"""

from __future__ import annotations

import math
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from pwdlib import PasswordHash
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import (
    ClientAlreadyExists,
    ClientNotFound,
    Conflict,
    InvalidClient,
    InvalidClientData,
    NotFound,
    Unprocessable,
)
from app.core.scopes import DEFAULT_CLIENT_SCOPES, Scope, format_scopes, parse_scopes
from app.core.security import generate_client_secret
from app.crud import client as client_crud
from app.crud import client_usage as usage_crud
from app.crud.client_usage import UsageCounts
from app.db.models import Client
from app.services.audit import (
    Actor,
    AuditAction,
    AuditOutcome,
    AuditTrail,
    record_event,
    refusal_reason,
)

MIN_SECRET_LENGTH = 12
# Argon2 hashes whatever it is given; the cap only stops megabyte "secrets".
MAX_SECRET_LENGTH = 512
MAX_CLIENT_ID_LENGTH = 128
MAX_NAME_LENGTH = 200
# Room for the random suffix of a generated id within MAX_CLIENT_ID_LENGTH.
_ID_PREFIX_LENGTH = 40
_GENERATED_ID_ATTEMPTS = 5
# Module level: inside ClientService, `list` names its method.
_Changes = list[tuple[AuditAction, dict[str, object]]]
USAGE_WINDOWS = {"last_24h": timedelta(days=1), "last_30d": timedelta(days=30)}


class ClientIdTaken(ClientAlreadyExists, Conflict):
    """A client with that id is already registered (409)."""


class UnknownClient(ClientNotFound, NotFound):
    """No client with that id (404)."""


class RefusedClientData(InvalidClientData, Unprocessable):
    """A client id, name, secret or scope list the registry refuses (422)."""


class AdminLockout(Conflict):
    """A change refused because it would cut the service's administration off (409)."""


class SelfDemotion(AdminLockout):
    """An admin client may not deactivate, delete or remove `admin` from itself."""


class LastActiveAdmin(AdminLockout):
    """The change would leave no active client holding `admin`."""


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


@dataclass(frozen=True)
class ClientOverview:
    """A client with its usage from the prediction log over the last day and month."""

    client: ClientRecord
    last_24h: UsageCounts
    last_30d: UsageCounts

    @property
    def last_seen(self) -> datetime | None:
        """The later of its last token and its latest logged prediction."""
        moments = [self.client.last_used_at, self.last_30d.last_prediction_at]
        return max((m for m in moments if m is not None), default=None)


class ClientService:
    """Client registry operations; each public method is one transaction.

    Changing methods take the `actor` to audit (None: this process's OS user, as
    `cli:<user>`).
    """

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
        client_id: str | None = None,
        secret: str | None = None,
        scopes: str | None = None,
        actor: Actor | None = None,
    ) -> tuple[ClientRecord, str]:
        """Create a client; returns it with its secret (generated when none is given).

        Without a `client_id` one is generated from the name plus a random suffix.
        """
        actor = actor or Actor.operator()
        name = validate_name(name)
        secret = _validated_secret(secret) if secret is not None else generate_client_secret()
        scope_text = validate_scopes(
            scopes if scopes is not None else format_scopes(DEFAULT_CLIENT_SCOPES)
        )
        client_id = (
            validate_client_id(client_id) if client_id is not None else self._new_client_id(name)
        )
        if client_crud.get_client(self._session, client_id=client_id) is not None:
            raise ClientIdTaken(f"A client with id {client_id!r} already exists.")
        row = client_crud.create_client(
            self._session,
            client_id=client_id,
            name=name,
            secret_hash=self._hasher.hash(secret),
            scopes=scope_text,
            now=_now(),
            tokens_valid_after=_whole_second(),
        )
        record_event(
            self._session,
            actor=actor.name,
            action=AuditAction.client_create,
            target=client_id,
            detail={"name": name, "scopes": scope_text},
        )
        try:
            self._session.commit()
        except IntegrityError as exc:
            # Another process registered the same id between our check and commit.
            self._session.rollback()
            raise ClientIdTaken(f"A client with id {client_id!r} already exists.") from exc
        return ClientRecord.from_row(row), secret

    def list(self) -> list[ClientRecord]:
        """Every registered client."""
        return [ClientRecord.from_row(row) for row in client_crud.list_clients(self._session)]

    def get(self, client_id: str) -> ClientRecord:
        """One client; UnknownClient when the id is unknown."""
        return ClientRecord.from_row(self._require(client_id))

    def overview(self, *, now: datetime | None = None) -> Sequence[ClientOverview]:
        """Every client with its usage: one grouped prediction-log query per window."""
        usage = self._usage(now)
        return [self._overview_of(row, usage) for row in client_crud.list_clients(self._session)]

    def overview_of(self, client_id: str, *, now: datetime | None = None) -> ClientOverview:
        """One client with its usage; UnknownClient when the id is unknown."""
        row = self._require(client_id)
        return self._overview_of(row, self._usage(now, client_id))

    def update(
        self,
        client_id: str,
        *,
        name: str | None = None,
        scopes: str | None = None,
        active: bool | None = None,
        actor: Actor | None = None,
        force: bool = False,
    ) -> ClientRecord:
        """Rename, re-scope, activate or deactivate in one transaction, auditing each change.

        A value equal to the current one changes nothing. New scopes and deactivation
        revoke outstanding tokens. AdminLockout when the change would leave no active
        admin client (`force`, the CLI's break-glass, lifts that rule) or an admin
        client would demote itself.
        """
        actor = actor or Actor.operator()
        new_name = validate_name(name) if name is not None else None
        new_scopes = validate_scopes(scopes) if scopes is not None else None
        may_remove_admin = active is False or new_scopes is not None
        # Locked before the client itself, in one order for every caller.
        active_clients = client_crud.lock_active_clients(self._session) if may_remove_admin else []
        row = self._require(client_id)
        changes: _Changes = []
        if new_name is not None and new_name != row.name:
            changes.append(
                (AuditAction.client_update, {"name": {"from": row.name, "to": new_name}})
            )
        if new_scopes is not None and new_scopes != row.scopes:
            changes.append((AuditAction.client_set_scopes, {"from": row.scopes, "to": new_scopes}))
        if active is not None and active != row.is_active:
            action = AuditAction.client_activate if active else AuditAction.client_deactivate
            changes.append((action, {}))
        if not changes:
            record = ClientRecord.from_row(row)
            self._session.commit()  # releases the locks
            return record
        forced = False
        stays_admin = (row.is_active if active is None else active) and _holds_admin(
            new_scopes or row.scopes
        )
        if _is_active_admin(row) and not stays_admin:
            refused = (
                AuditAction.client_deactivate if active is False else AuditAction.client_set_scopes
            )
            requested: dict[str, object] = {
                k: v for k, v in (("scopes", new_scopes), ("active", active)) if v is not None
            }
            forced = self._check_admin_removal(
                row, active_clients, actor=actor, action=refused, force=force, detail=requested
            )
        if new_name is not None:
            row.name = new_name
        if new_scopes is not None:
            row.scopes = new_scopes
        if active is not None:
            row.is_active = active
        if any(
            a in (AuditAction.client_set_scopes, AuditAction.client_deactivate) for a, _ in changes
        ):
            row.tokens_valid_after = _revocation_instant()
        for action, detail in changes:
            if forced:
                detail = {**detail, "forced": True}
            record_event(
                self._session, actor=actor.name, action=action, target=client_id, detail=detail
            )
        self._session.commit()
        return ClientRecord.from_row(row)

    def rename(self, client_id: str, name: str, *, actor: Actor | None = None) -> ClientRecord:
        """Give the client a new display name."""
        return self.update(client_id, name=name, actor=actor)

    def set_active(
        self, client_id: str, *, active: bool, actor: Actor | None = None, force: bool = False
    ) -> ClientRecord:
        """Activate or deactivate; deactivation revokes every outstanding token."""
        return self.update(client_id, active=active, actor=actor, force=force)

    def set_scopes(
        self, client_id: str, scopes: str, *, actor: Actor | None = None, force: bool = False
    ) -> ClientRecord:
        """Replace the allowed scopes; outstanding tokens are revoked so none keeps old rights."""
        return self.update(client_id, scopes=scopes, actor=actor, force=force)

    def rotate_secret(
        self, client_id: str, secret: str | None = None, *, actor: Actor | None = None
    ) -> str:
        """Replace the secret (generated unless given) and revoke outstanding tokens."""
        actor = actor or Actor.operator()
        row = self._require(client_id)
        generated = secret is None
        secret = _validated_secret(secret) if secret is not None else generate_client_secret()
        row.secret_hash = self._hasher.hash(secret)
        row.tokens_valid_after = _revocation_instant()
        record_event(
            self._session,
            actor=actor.name,
            action=AuditAction.client_rotate_secret,
            target=client_id,
            detail={"generated": generated},
        )
        self._session.commit()
        return secret

    def delete(self, client_id: str, *, actor: Actor | None = None, force: bool = False) -> None:
        """Remove the client; its tokens stop working once revocation caches refresh."""
        actor = actor or Actor.operator()
        active_clients = client_crud.lock_active_clients(self._session)
        row = self._require(client_id)
        forced = _is_active_admin(row) and self._check_admin_removal(
            row,
            active_clients,
            actor=actor,
            action=AuditAction.client_delete,
            force=force,
            detail={},
        )
        detail: dict[str, object] = {
            "name": row.name,
            "scopes": row.scopes,
            "active": row.is_active,
        }
        if forced:
            detail["forced"] = True
        client_crud.delete_client(self._session, client_id=client_id)
        record_event(
            self._session,
            actor=actor.name,
            action=AuditAction.client_delete,
            target=client_id,
            detail=detail,
        )
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

    def _check_admin_removal(
        self,
        row: Client,
        active_clients: Sequence[Client],
        *,
        actor: Actor,
        action: AuditAction,
        force: bool,
        detail: dict[str, object],
    ) -> bool:
        """Refuse (and audit the refusal) taking `admin` from `row`, an active admin client.

        True when only `force` let it through: the change leaves no active admin client.
        """
        if actor.client_id == row.client_id:
            self._refuse(
                SelfDemotion(
                    f"Client {row.client_id!r} cannot deactivate, delete or remove the admin "
                    "scope from itself; another admin client (or manage_clients.py) must do it."
                ),
                actor=actor,
                action=action,
                target=row.client_id,
                detail=detail,
            )
        others = [
            c for c in active_clients if c.client_id != row.client_id and _holds_admin(c.scopes)
        ]
        if others:
            return False
        if not force:
            self._refuse(
                LastActiveAdmin(
                    f"Client {row.client_id!r} is the last active client with the admin scope; "
                    "register or activate another admin client first."
                ),
                actor=actor,
                action=action,
                target=row.client_id,
                detail=detail,
            )
        return True

    def _refuse(
        self,
        error: AdminLockout,
        *,
        actor: Actor,
        action: AuditAction,
        target: str,
        detail: dict[str, object],
    ) -> NoReturn:
        # Nothing of the refused change is kept, and the locks go with it; the refusal
        # is recorded on its own (a failure to record it is logged, not raised).
        self._session.rollback()
        AuditTrail(self._session).record(
            actor=actor.name,
            action=action,
            target=target,
            outcome=AuditOutcome.failure,
            detail={**detail, "reason": refusal_reason(error)},
        )
        raise error

    def _usage(
        self, now: datetime | None, client_id: str | None = None
    ) -> dict[str, dict[str, UsageCounts]]:
        now = now or _now()
        return {
            window: usage_crud.usage_since(self._session, since=now - span, client_id=client_id)
            for window, span in USAGE_WINDOWS.items()
        }

    @staticmethod
    def _overview_of(row: Client, usage: dict[str, dict[str, UsageCounts]]) -> ClientOverview:
        return ClientOverview(
            client=ClientRecord.from_row(row),
            last_24h=usage["last_24h"].get(row.client_id, UsageCounts.none()),
            last_30d=usage["last_30d"].get(row.client_id, UsageCounts.none()),
        )

    def _new_client_id(self, name: str) -> str:
        for _ in range(_GENERATED_ID_ATTEMPTS):
            candidate = generate_client_id(name)
            if client_crud.get_client(self._session, client_id=candidate) is None:
                return candidate
        raise ClientIdTaken("Could not generate an unused client id; retry.")

    def _require(self, client_id: str) -> Client:
        row = client_crud.get_client(self._session, client_id=client_id)
        if row is None:
            raise UnknownClient(f"No client with id {client_id!r}.")
        return row


def generate_client_id(name: str) -> str:
    """A readable id from the name plus a random suffix: `billing-service-Xw3_pQ9a`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    prefix = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:_ID_PREFIX_LENGTH]
    return f"{prefix.rstrip('-') or 'client'}-{secrets.token_urlsafe(6)}"


def _holds_admin(scopes: str) -> bool:
    return Scope.admin in parse_scopes(scopes)


def _is_active_admin(row: Client) -> bool:
    return row.is_active and _holds_admin(row.scopes)


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


def validate_client_id(client_id: str) -> str:
    """The id unchanged; RefusedClientData naming what is wrong with it."""
    if not client_id or client_id != client_id.strip():
        raise RefusedClientData("Client id must be non-empty without surrounding whitespace.")
    if len(client_id) > MAX_CLIENT_ID_LENGTH:
        raise RefusedClientData(f"Client id is longer than {MAX_CLIENT_ID_LENGTH} characters.")
    if _has_control_characters(client_id):
        raise RefusedClientData("Client id contains control characters.")
    return client_id


def validate_name(name: str) -> str:
    """The name without surrounding whitespace; RefusedClientData when unusable."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or _has_control_characters(name):
        raise RefusedClientData(f"Name must be 1-{MAX_NAME_LENGTH} printable characters.")
    return name


def _validated_secret(secret: str) -> str:
    if len(secret) < MIN_SECRET_LENGTH:
        raise RefusedClientData(f"Client secret must be at least {MIN_SECRET_LENGTH} characters.")
    if len(secret) > MAX_SECRET_LENGTH:
        raise RefusedClientData(f"Client secret must be at most {MAX_SECRET_LENGTH} characters.")
    if _has_control_characters(secret):
        raise RefusedClientData("Client secret contains control characters.")
    return secret


def validate_scopes(scopes: str) -> str:
    """Space-separated scopes in canonical order; RefusedClientData for unknown or none."""
    try:
        parsed = parse_scopes(scopes)
    except ValueError as exc:
        allowed = ", ".join(s.value for s in Scope)
        raise RefusedClientData(f"{exc} (allowed: {allowed})") from exc
    if not parsed:
        raise RefusedClientData("A client needs at least one scope.")
    return format_scopes(parsed)
