"""Domain errors. Services raise these; `app/api/errors.py` alone turns them into HTTP."""

from __future__ import annotations


class GaroupaError(Exception):
    """Base of every error the service raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OAuthError(GaroupaError):
    """An error the token endpoint reports as `{"error", "error_description"}`."""

    error_code = "invalid_request"


class InvalidRequest(OAuthError):
    """Missing, duplicated or malformed parameter, or a wrong content type."""

    error_code = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed; deliberately silent about why."""

    error_code = "invalid_client"

    def __init__(self, message: str = "Client authentication failed.") -> None:
        super().__init__(message)


class UnsupportedGrantType(OAuthError):
    """A grant type other than client_credentials."""

    error_code = "unsupported_grant_type"


class InvalidScope(OAuthError):
    """A requested scope that is unknown or not allowed for the client."""

    error_code = "invalid_scope"


class TooManyAttempts(OAuthError):
    """Too many failed authentications for a client id or from an address."""

    error_code = "too_many_requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many failed authentication attempts; retry later.")
        self.retry_after = retry_after


class TemporarilyUnavailable(OAuthError):
    """A secret check cannot start now: every slot is busy, or the client id's last
    allowed attempts are still being checked (503 with Retry-After)."""

    error_code = "temporarily_unavailable"

    def __init__(self, retry_after: int) -> None:
        super().__init__("The token endpoint is busy verifying other requests; retry shortly.")
        self.retry_after = retry_after


class NotAuthenticated(GaroupaError):
    """No bearer token was sent."""

    def __init__(self) -> None:
        super().__init__("Not authenticated")


class InvalidToken(GaroupaError):
    """Malformed, expired, wrongly signed or revoked access token."""

    error_code = "invalid_token"


class InsufficientScope(GaroupaError):
    """A valid token that lacks a scope the route requires."""

    error_code = "insufficient_scope"

    def __init__(self, required: list[str]) -> None:
        self.required = required
        super().__init__(f"The access token lacks the required scope: {' '.join(required)}")


class ClientAlreadyExists(GaroupaError):
    """A client with that id is already registered."""


class ClientNotFound(GaroupaError):
    """No client with that id."""


class InvalidClientData(GaroupaError):
    """A client id, name, secret or scope list that the registry refuses."""


class BackendUnavailable(GaroupaError):
    """A backend the request depends on (database, cache) does not answer."""


class ModelNotReady(GaroupaError):
    """No trained model is active yet."""

    def __init__(
        self,
        message: str = "No model is trained yet. Train one with `python train.py` "
        "(or POST /training/), then retry.",
    ) -> None:
        super().__init__(message)


class NotFound(GaroupaError):
    """A resource the request names does not exist (404)."""


class BadRequest(GaroupaError):
    """A request that is well-formed JSON but asks for something not allowed (400)."""


class Conflict(GaroupaError):
    """The request collides with the current state, e.g. a job already running (409)."""


class Unprocessable(GaroupaError):
    """Content that cannot be used, e.g. a CSV without the needed columns (422)."""


class QuotaExceeded(GaroupaError):
    """Storing this content would pass the client's storage quota (413)."""


class RateLimited(GaroupaError):
    """A client exceeded its request rate for a scope (429)."""

    def __init__(self, *, scope: str, limit: str, retry_after: int) -> None:
        super().__init__(
            f"Rate limit exceeded for scope {scope!r} ({limit}); retry in {retry_after} s."
        )
        self.scope = scope
        self.retry_after = retry_after
