"""Shapes of the admin routes: the client registry with each client's usage, and the audit trail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from app.core.errors import InvalidClientData
from app.core.scopes import DEFAULT_CLIENT_SCOPES, Scope, format_scopes
from app.services.audit import AuditAction, AuditFilter, AuditOutcome, decode_cursor
from app.services.clients import (
    MAX_CLIENT_ID_LENGTH,
    MAX_NAME_LENGTH,
    ClientOverview,
    ClientRecord,
    validate_client_id,
    validate_name,
    validate_scopes,
)

__all__ = [
    "AdminClientResponse",
    "AuditEventResponse",
    "AuditPageResponse",
    "AuditQuery",
    "ClientCreateRequest",
    "ClientCreatedResponse",
    "ClientListResponse",
    "ClientResponse",
    "ClientUpdateRequest",
    "SecretRotatedResponse",
    "UsageWindow",
]

_SCOPE_NAMES = [s.value for s in Scope]


def _registry_rule(check: Callable[[str], str]) -> Callable[[str], str]:
    """The client registry's own check as a field validator: one rule for the API and the CLI."""

    def validate(value: str) -> str:
        try:
            return check(value)
        except InvalidClientData as exc:
            raise ValueError(exc.message) from None

    return validate


def _scope_list_as_text(value: object) -> object:
    """`["predict", "train"]` becomes `"predict train"`; a string is left as it is."""
    if not isinstance(value, list):
        return value
    if not all(isinstance(v, str) and v and v.split() == [v] for v in value):
        raise ValueError('each item is one scope name, e.g. ["predict", "train"]')
    return " ".join(value)


ClientName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH),
    AfterValidator(_registry_rule(validate_name)),
    Field(description="Human-readable name (no control characters).", examples=["Billing Service"]),
]
ClientId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_CLIENT_ID_LENGTH),
    AfterValidator(_registry_rule(validate_client_id)),
    Field(
        description="The id the client authenticates as (no surrounding whitespace or control "
        "characters).",
        examples=["billing"],
    ),
]
ScopeText = Annotated[
    str,
    BeforeValidator(_scope_list_as_text),
    StringConstraints(max_length=200),
    AfterValidator(_registry_rule(validate_scopes)),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "items": {"type": "string", "enum": _SCOPE_NAMES}},
                {"type": "string", "description": "Space-separated scope names."},
            ],
            "description": "Allowed scopes: a list, or a space-separated string, out of "
            f"{', '.join(_SCOPE_NAMES)}.",
            "examples": [["predict"], "predict train"],
        }
    ),
]


class ClientCreateRequest(BaseModel):
    """Register a client; its secret is generated and returned once."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"name": "Billing Service", "client_id": "billing", "scopes": ["predict"]},
                {"name": "Nightly Trainer", "scopes": "predict train"},
            ]
        },
    )

    name: ClientName
    client_id: ClientId | None = Field(
        default=None,
        description="Omitted: generated from the name plus a random suffix.",
    )
    scopes: ScopeText | None = Field(
        default=None,
        description=f"Omitted: `{format_scopes(DEFAULT_CLIENT_SCOPES)}`, as manage_clients.py "
        "`add` gives.",
    )


class ClientUpdateRequest(BaseModel):
    """Change any of a client's name, scopes and active state (at least one)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"active": False},
                {"scopes": ["predict", "train"]},
                {"name": "Billing Service (EU)", "scopes": "predict"},
            ]
        },
    )

    name: ClientName | None = None
    scopes: ScopeText | None = Field(
        default=None, description="Replaces the scopes and revokes outstanding tokens."
    )
    active: bool | None = Field(
        default=None, description="false revokes outstanding tokens; true lets it get new ones."
    )

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if self.name is None and self.scopes is None and self.active is None:
            raise ValueError("give at least one of name, scopes, active")
        return self


class UsageWindow(BaseModel):
    """Logged predictions of one client over a window."""

    requests: int = Field(description="Scoring requests (a batch is one).")
    predictions: int = Field(description="Names scored (a batch counts each name).")


class ClientUsage(BaseModel):
    """Usage over the last 24 hours and the last 30 days, from the prediction log."""

    last_24h: UsageWindow
    last_30d: UsageWindow


class ClientResponse(BaseModel):
    """A registered client (never its secret or hash)."""

    client_id: str
    name: str
    scopes: list[Scope]
    active: bool
    created_at: datetime
    last_used_at: datetime | None = Field(description="When it last obtained a token.")

    @classmethod
    def from_record(cls, record: ClientRecord) -> Self:
        """The public fields of a registry record."""
        return cls(
            client_id=record.client_id,
            name=record.name,
            scopes=list(record.scopes),
            active=record.is_active,
            created_at=record.created_at,
            last_used_at=record.last_used_at,
        )


class AdminClientResponse(ClientResponse):
    """A client with its usage."""

    usage: ClientUsage
    last_seen: datetime | None = Field(
        description="The later of its last token and its latest logged prediction."
    )

    @classmethod
    def from_overview(cls, overview: ClientOverview) -> Self:
        """A client and its usage windows, as the registry reports them."""
        day, month = overview.last_24h, overview.last_30d
        return cls(
            **ClientResponse.from_record(overview.client).model_dump(),
            usage=ClientUsage(
                last_24h=UsageWindow(requests=day.requests, predictions=day.predictions),
                last_30d=UsageWindow(requests=month.requests, predictions=month.predictions),
            ),
            last_seen=overview.last_seen,
        )


class ClientListResponse(BaseModel):
    """Every registered client, oldest first."""

    clients: list[AdminClientResponse]


class ClientCreatedResponse(ClientResponse):
    """The new client and its secret, shown this once."""

    client_secret: str = Field(description="Store it now: it cannot be shown again.")


class SecretRotatedResponse(BaseModel):
    """The client's new secret, shown this once; tokens issued before are revoked."""

    client_id: str
    client_secret: str


class AuditEventResponse(BaseModel):
    """One recorded change."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    actor: str = Field(description="A client id, or `cli:<os user>` for manage_clients.py.")
    action: str
    target: str | None
    outcome: str = Field(description="`success`, or `failure` for a refused change.")
    detail: dict[str, Any] | None


class AuditPageResponse(BaseModel):
    """A page of the audit trail, newest first."""

    events: list[AuditEventResponse]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


def _checked_cursor(value: str | None) -> str | None:
    if value is not None:
        decode_cursor(value)
    return value


class AuditQuery(BaseModel):
    """Filters and position of an audit trail page (query parameters)."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=100, ge=1, le=500, description="Events per page.")
    cursor: Annotated[str | None, AfterValidator(_checked_cursor)] = Field(
        default=None, max_length=200, description="`next_cursor` of the previous page."
    )
    actor: str | None = Field(default=None, max_length=160, description="Exact actor.")
    action: AuditAction | None = None
    target: str | None = Field(default=None, max_length=300, description="Exact target.")
    outcome: AuditOutcome | None = None
    since: AwareDatetime | None = Field(
        default=None,
        description="Events at or after this ISO 8601 time (with a time zone: `Z` or an "
        "encoded `%2B01:00`).",
    )
    until: AwareDatetime | None = Field(
        default=None, description="Events before this ISO 8601 time (with a time zone)."
    )

    def to_filter(self) -> AuditFilter:
        """The trail's filter for these parameters."""
        return AuditFilter(
            actor=self.actor,
            action=None if self.action is None else self.action.value,
            target=self.target,
            outcome=None if self.outcome is None else self.outcome.value,
            since=self.since,
            until=self.until,
        )
