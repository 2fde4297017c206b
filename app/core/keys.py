"""Asymmetric JWT keys from PEM files: loading, `kid` thumbprints and public JWKs."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
# NIST SP 800-57: RSA below 2048 bits no longer protects anything.
MIN_RSA_BITS = 2048


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file and the reason."""


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


# RFC 7638 §3.2: the members a thumbprint covers, per key type.
_REQUIRED_MEMBERS = {"RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK SHA-256 thumbprint, base64url without padding: a stable `kid`."""
    members = {k: jwk[k] for k in _REQUIRED_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
