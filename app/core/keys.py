"""JWT signing keys, owned here alone: which key signs, which keys verify, their `kid`s and JWKs.

HS256 signs with SECRET_KEY. RS256 and EdDSA sign with the PEM private key in
JWT_PRIVATE_KEY_FILE, and the public keys of retired signing keys keep verifying
(and stay published) until the tokens they signed have expired.

This module depends on `core.config` and never the other way round: Settings
judges its own SECRET_KEY (a weak one is refused while the settings validate),
so config needs nothing from here and there is no import cycle.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

from app.core.config import ConfigurationError, Settings

logger = logging.getLogger(__name__)

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
# NIST SP 800-57: RSA below 2048 bits no longer protects anything.
MIN_RSA_BITS = 2048
# RFC 7638 §3.2: the members a thumbprint covers, per key type.
_REQUIRED_MEMBERS = {"RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class JwtKey:
    """One signing/verification key with its `kid` and algorithm."""

    kid: str
    algorithm: str
    # Any: PyJWT takes the HS256 secret as a str and RS256/EdDSA keys as
    # cryptography objects, and a retired key has no signing half (None).
    signing_key: Any
    verification_key: Any
    jwk: dict[str, Any] | None = None  # the public JWK of an asymmetric key


@dataclass(frozen=True)
class Keyring:
    """The key new tokens are signed with, and every key still accepted, by `kid`."""

    current: JwtKey
    accepted: Mapping[str, JwtKey]

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """HS256 from SECRET_KEY, or RS256/EdDSA from key files; bad files stop start-up."""
        if settings.jwt_algorithm == "HS256":
            key = _hs256_key(_secret_or_random(settings))
            return cls(current=key, accepted={key.kid: key})
        assert settings.jwt_private_key_file is not None  # Settings refuses it otherwise
        try:
            private = load_private_key(settings.jwt_private_key_file, settings.jwt_algorithm)
            previous = [
                load_public_key(path, settings.jwt_algorithm)
                for path in settings.previous_public_key_paths
            ]
        except KeyFileError as exc:
            raise ConfigurationError(f"Garoupa refuses to start: {exc}") from None
        current = _asymmetric_key(private.public_key(), private)
        accepted = {current.kid: current}
        for public in previous:
            key = _asymmetric_key(public, None)
            # A retired key listed twice, or equal to the current one, is one key:
            # the current one keeps its signing half.
            accepted.setdefault(key.kid, key)
        return cls(current=current, accepted=accepted)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public keys tokens may be verified with (none for HS256: it has no public half)."""
        return {"keys": [key.jwk for key in self.accepted.values() if key.jwk is not None]}


def _secret_or_random(settings: Settings) -> str:
    if settings.secret_key:
        return settings.secret_key
    # Development without a key still works, but tokens die with the process and
    # are not shared between workers; `make run` writes a key to `.env` to avoid this.
    # (Production never gets here: Settings refuses to validate without SECRET_KEY.)
    logger.warning(
        "SECRET_KEY not set: using a random per-process signing key "
        "(tokens will not survive a restart or be shared across workers)"
    )
    return secrets.token_urlsafe(48)


def _hs256_key(secret: str) -> JwtKey:
    return JwtKey(
        kid=key_id(secret), algorithm="HS256", signing_key=secret, verification_key=secret
    )


def key_id(secret: str) -> str:
    """A stable, non-reversible `kid` for an HS256 secret."""
    # Every token header carries the kid, so it is domain-separated rather than a
    # plain hash that could be matched against one of the same secret elsewhere.
    return hashlib.sha256(b"garoupa-kid\x00" + secret.encode()).hexdigest()[:16]


def _asymmetric_key(public: PublicKey, private: PrivateKey | None) -> JwtKey:
    jwk = public_jwk(public)
    return JwtKey(
        kid=jwk["kid"],
        algorithm=jwk["alg"],
        signing_key=private,
        verification_key=public,
        jwk=jwk,
    )


def algorithm_of(key: PublicKey | PrivateKey) -> str:
    """The JWS algorithm a key type signs with."""
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return "RS256"
    return "EdDSA"


def load_private_key(path: Path, algorithm: str) -> PrivateKey:
    """An unencrypted PEM private key matching `algorithm` (RS256: RSA >= 2048; EdDSA: Ed25519)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise KeyFileError(f"JWT_PRIVATE_KEY_FILE {path} does not exist") from None
    except (ValueError, TypeError) as exc:
        raise KeyFileError(
            f"JWT_PRIVATE_KEY_FILE {path} is not an unencrypted PEM key: {exc}"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise KeyFileError(f"{path}: only RSA (RS256) and Ed25519 (EdDSA) keys are supported")
    _check(key, algorithm, path)
    return key


def load_public_key(path: Path, algorithm: str) -> PublicKey:
    """A PEM public key (or the public half of a private key) matching `algorithm`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"public key file {path} does not exist") from None
    try:
        key: Any = serialization.load_pem_public_key(data)
    except ValueError:
        # A retired private key file is accepted as it is: verifying needs only
        # its public half, so the operator need not convert it first.
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{path} is not a PEM public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise KeyFileError(f"{path}: only RSA and Ed25519 public keys are supported")
    _check(key, algorithm, path)
    return key


def _check(key: PublicKey | PrivateKey, algorithm: str, path: Path) -> None:
    if algorithm_of(key) != algorithm:
        raise KeyFileError(f"{path} holds a {algorithm_of(key)} key, but JWT_ALGORITHM={algorithm}")
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise KeyFileError(f"{path}: RSA keys need at least {MIN_RSA_BITS} bits")


def public_jwk(key: PublicKey) -> dict[str, Any]:
    """The public members of `key` as a JWK, with `kid`, `alg` and `use` (RFC 7517)."""
    if isinstance(key, rsa.RSAPublicKey):
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(key, as_dict=True)
    jwk = {k: v for k, v in jwk.items() if k in _REQUIRED_MEMBERS[jwk["kty"]]}
    return {**jwk, "kid": thumbprint(jwk), "alg": algorithm_of(key), "use": "sig"}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK SHA-256 thumbprint, base64url without padding: a stable `kid`."""
    members = {k: jwk[k] for k in _REQUIRED_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
