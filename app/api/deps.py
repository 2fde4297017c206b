"""Every dependency the routes use, as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2, SecurityScopes
from sqlalchemy.orm import Session

from app.api.middleware import VERIFIED_CLAIMS
from app.api.token_request import parse_token_request
from app.core.config import Settings
from app.core.errors import (
    InsufficientScope,
    InvalidToken,
    NotAuthenticated,
)
from app.core.keys import Keyring
from app.core.scopes import SCOPE_DESCRIPTIONS, Scope
from app.services.audit import AuditTrail
from app.services.auth import AuthService, TokenRequest
from app.services.bulk_jobs import BulkJobService
from app.services.clients import ClientService
from app.services.datasets import UploadStore
from app.services.feedback import FeedbackService
from app.services.health import HealthService
from app.services.job_launcher import JobLauncher
from app.services.models import ModelRegistry
from app.services.prediction import PredictionService
from app.services.prediction_history import PredictionHistory
from app.services.prediction_log import PredictionLog
from app.services.runtime import Runtime
from app.services.shadow import ShadowEvaluator, ShadowService
from app.services.tokens import TokenClaims
from app.services.training_jobs import TrainingJobService

oauth2_scheme = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/auth/token", scopes=dict(SCOPE_DESCRIPTIONS)
        )
    ),
    scheme_name="OAuth2ClientCredentials",
    description="OAuth2 client credentials: trade client_id + client_secret for a bearer JWT.",
    auto_error=False,
)


# Async although they do no I/O: FastAPI runs plain `def` dependencies in a
# worker thread, a hop that costs more than everything these functions do.
async def get_runtime(request: Request) -> Runtime:
    """The per-process parts built in the lifespan; routes take what they need from it
    through the dependencies below, never the whole runtime."""
    runtime: Runtime = request.app.state.runtime
    return runtime


_RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(runtime: _RuntimeDep) -> Iterator[Session]:
    """One database session per request, closed after the response."""
    with runtime.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def get_launcher(runtime: _RuntimeDep) -> JobLauncher:
    """What starts training processes (tests override it to simulate a failure)."""
    return runtime.launcher


async def get_prediction_service(request: Request) -> PredictionService:
    """This worker's serving model."""
    # From the request rather than through get_runtime: on the hottest route every
    # dependency node is paid for on each request.
    predictions: PredictionService = request.app.state.runtime.predictions
    return predictions


PredictionServiceDep = Annotated[PredictionService, Depends(get_prediction_service)]


async def get_prediction_log(request: Request) -> PredictionLog:
    """This worker's prediction log queue."""
    log: PredictionLog = request.app.state.runtime.prediction_log
    return log


PredictionLogDep = Annotated[PredictionLog, Depends(get_prediction_log)]


def get_audit_trail(session: SessionDep) -> AuditTrail:
    """The audit trail on this request's session."""
    return AuditTrail(session)


AuditTrailDep = Annotated[AuditTrail, Depends(get_audit_trail)]


def get_prediction_history(runtime: _RuntimeDep, session: SessionDep) -> PredictionHistory:
    """Reads of the prediction log (exports open a session of their own)."""
    return PredictionHistory(session, runtime.database.sessions)


PredictionHistoryDep = Annotated[PredictionHistory, Depends(get_prediction_history)]


async def get_keyring(runtime: _RuntimeDep) -> Keyring:
    """The signing key and the retired keys tokens may still carry."""
    return runtime.tokens.keyring


KeyringDep = Annotated[Keyring, Depends(get_keyring)]


def get_client_service(runtime: _RuntimeDep, session: SessionDep) -> ClientService:
    """The client registry bound to this request's session."""
    return ClientService(session, runtime.hasher, runtime.dummy_hash)


ClientServiceDep = Annotated[ClientService, Depends(get_client_service)]


def get_auth_service(runtime: _RuntimeDep, clients: ClientServiceDep) -> AuthService:
    """The client-credentials grant."""
    return AuthService(clients, runtime.tokens, runtime.login_guard, runtime.metrics)


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


def get_model_registry(runtime: _RuntimeDep, session: SessionDep) -> ModelRegistry:
    """The model registry, with this worker's serving model following activations."""
    return ModelRegistry(session, runtime.settings.model_dir, runtime.predictions)


ModelRegistryDep = Annotated[ModelRegistry, Depends(get_model_registry)]


def get_shadow_service(session: SessionDep, registry: ModelRegistryDep) -> ShadowService:
    """Shadow runs: start, stop, report."""
    return ShadowService(session, registry)


ShadowServiceDep = Annotated[ShadowService, Depends(get_shadow_service)]


def get_shadow_evaluator(runtime: _RuntimeDep) -> ShadowEvaluator:
    """This worker's part of the open shadow run (the prediction routes offer to it)."""
    return runtime.shadow


ShadowEvaluatorDep = Annotated[ShadowEvaluator, Depends(get_shadow_evaluator)]


def get_training_jobs(
    settings: SettingsDep,
    session: SessionDep,
    launcher: Annotated[JobLauncher, Depends(get_launcher)],
) -> TrainingJobService:
    """Training jobs: plan, start, follow, cancel."""
    return TrainingJobService(session, settings, launcher)


TrainingJobsDep = Annotated[TrainingJobService, Depends(get_training_jobs)]


async def get_bulk_launcher(runtime: _RuntimeDep) -> JobLauncher:
    """What starts bulk scoring processes (tests override it to simulate a failure)."""
    return runtime.bulk_launcher


def get_bulk_jobs(
    settings: SettingsDep,
    session: SessionDep,
    launcher: Annotated[JobLauncher, Depends(get_bulk_launcher)],
) -> BulkJobService:
    """Bulk scoring jobs: submit, follow, read, cancel."""
    return BulkJobService(session, settings, launcher)


BulkJobsDep = Annotated[BulkJobService, Depends(get_bulk_jobs)]


def get_feedback_service(settings: SettingsDep, session: SessionDep) -> FeedbackService:
    """Feedback records and their review."""
    return FeedbackService(session, auto_accept=settings.feedback_auto_accept)


FeedbackServiceDep = Annotated[FeedbackService, Depends(get_feedback_service)]


def get_health_service(runtime: _RuntimeDep, session: SessionDep) -> HealthService:
    """Readiness and scrape-time metrics."""
    return HealthService(session, runtime.predictions, runtime.metrics)


HealthServiceDep = Annotated[HealthService, Depends(get_health_service)]


async def get_upload_store(runtime: _RuntimeDep) -> UploadStore:
    """Per-client upload folders with their quota and retention."""
    return runtime.uploads


UploadStoreDep = Annotated[UploadStore, Depends(get_upload_store)]


def client_address(request: Request) -> str:
    """The peer address the brute-force guard counts failures against."""
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]


def no_store(response: Response) -> None:
    """RFC 6749 §5.1: token responses must not be cached."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


TokenRequestDep = Annotated[TokenRequest, Depends(parse_token_request)]


@dataclass(frozen=True)
class AuthenticatedClient:
    """The caller behind a verified, unrevoked bearer token."""

    client_id: str
    scopes: frozenset[str]
    token_id: str


async def verify_bearer(authorization: str | None, runtime: Runtime) -> TokenClaims:
    """The claims of a valid, unrevoked bearer token in an `Authorization` header value."""
    if authorization is None:
        raise NotAuthenticated()
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise NotAuthenticated()
    token = token.strip()
    if not token or " " in token:
        raise InvalidToken("The access token is malformed.")
    claims = runtime.tokens.verify(token)
    await runtime.revocation.ensure_fresh(claims.issued_at)
    if runtime.revocation.is_revoked(claims.client_id, claims.issued_at):
        raise InvalidToken("The access token has been revoked.")
    return claims


async def get_current_client(
    request: Request,
    security_scopes: SecurityScopes,
    authorization: Annotated[str | None, Depends(oauth2_scheme)],
) -> AuthenticatedClient:
    """Verify the bearer token (RFC 6750 §2.1 header only) and the scopes the route needs."""
    # Not a get_runtime dependency: the scopes make this a separate cache entry, so
    # get_runtime would be solved again for every route that also needs it.
    runtime: Runtime = request.app.state.runtime
    # Requests that may carry a body were verified by BearerGate before the body was read.
    claims: TokenClaims | None = request.scope.get("state", {}).get(VERIFIED_CLAIMS)
    if claims is None:
        claims = await verify_bearer(authorization, runtime)
    # Read by the request log line; the token itself is never logged.
    request.state.client_id = claims.client_id
    missing = [scope for scope in security_scopes.scopes if scope not in claims.scopes]
    if missing:
        raise InsufficientScope(missing)
    await runtime.rate_limiter.hit(claims.client_id, list(security_scopes.scopes))
    return AuthenticatedClient(claims.client_id, claims.scopes, claims.token_id)


CurrentClient = Annotated[AuthenticatedClient, Security(get_current_client)]
PredictScope = Annotated[AuthenticatedClient, Security(get_current_client, scopes=[Scope.predict])]
TrainScope = Annotated[AuthenticatedClient, Security(get_current_client, scopes=[Scope.train])]
AdminScope = Annotated[AuthenticatedClient, Security(get_current_client, scopes=[Scope.admin])]


async def feedback_client(client: PredictScope, runtime: _RuntimeDep) -> AuthenticatedClient:
    """A `predict` client, counted against the feedback limit as well as the predict one."""
    await runtime.rate_limiter.hit(client.client_id, ["feedback"])
    return client


FeedbackClient = Annotated[AuthenticatedClient, Depends(feedback_client)]
