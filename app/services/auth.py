"""The OAuth2 client-credentials grant (RFC 6749 §4.4) from request to signed token."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from app.core.errors import InvalidClient, UnsupportedGrantType
from app.core.metrics import Metrics
from app.services.clients import ClientService
from app.services.login_guard import LoginGuard
from app.services.tokens import IssuedToken, TokenService

logger = logging.getLogger(__name__)

GRANT_TYPE = "client_credentials"


@dataclass(frozen=True)
class TokenRequest:
    """A parsed token request: parameters plus how the client authenticated."""

    grant_type: str
    client_id: str
    client_secret: str
    scope: str | None
    auth_method: Literal["client_secret_basic", "client_secret_post"]


class AuthService:
    """Authenticates a client under the brute-force guard and issues its token."""

    def __init__(
        self, clients: ClientService, tokens: TokenService, guard: LoginGuard, metrics: Metrics
    ) -> None:
        self._clients = clients
        self._tokens = tokens
        self._guard = guard
        self._metrics = metrics

    def issue_token(self, request: TokenRequest, *, address: str) -> IssuedToken:
        """Run the client-credentials grant; raises the RFC 6749 §5.2 error on failure."""
        if request.grant_type != GRANT_TYPE:
            raise UnsupportedGrantType(
                f"Only the {GRANT_TYPE} grant is supported, not {request.grant_type!r}."
            )
        # The attempt is reserved before Argon2 runs, so parallel guesses cannot
        # outnumber the per-id limit; unknown, wrong and inactive all fail alike.
        with self._guard.attempt(request.client_id, address) as attempt:
            try:
                client = self._clients.authenticate(request.client_id, request.client_secret)
            except InvalidClient:
                logger.info(
                    "token refused",
                    extra={"client_id": request.client_id, "auth_method": request.auth_method},
                )
                attempt.failed()
                raise
        scopes = self._tokens.grant_scopes(client, request.scope)
        issued = self._tokens.issue(client, scopes)
        logger.info(
            "token issued",
            extra={"client_id": client.client_id, "scope": issued.scope},
        )
        self._metrics.count_token_outcome("issued")
        return issued
