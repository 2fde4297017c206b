"""Asymmetric signing (RS256, EdDSA), key rotation, JWKS, and the algorithm-confusion attack."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from fastapi.testclient import TestClient

from app.core.config import ConfigurationError, Settings
from app.core.keys import Keyring
from tests.support import Registry, bearer, make_settings, serve, token_for

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


def write_key(path: Path, kind: str, bits: int = 2048) -> Path:
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=bits)
        if kind == "rsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def public_pem(private_path: Path) -> bytes:
    key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def asym_settings(tmp_path: Path, algorithm: str, key: Path, previous: str = "") -> Settings:
    return make_settings(
        tmp_path,
        jwt_algorithm=algorithm,
        jwt_private_key_file=key,
        jwt_previous_public_key_files=previous,
    )


@pytest.mark.parametrize(("algorithm", "kind"), [("RS256", "rsa"), ("EdDSA", "ed25519")])
def test_asymmetric_tokens_verify_with_the_published_jwks(
    tmp_path: Path, algorithm: str, kind: str
) -> None:
    key = write_key(tmp_path / "signing.pem", kind)
    with serve(asym_settings(tmp_path, algorithm, key)) as api:
        Registry(api.app).add()  # type: ignore[arg-type]
        token = token_for(api)
        keys = api.get("/.well-known/jwks.json").json()["keys"]
        metadata = api.get("/.well-known/oauth-authorization-server").json()
        assert api.get("/models/", headers=bearer(token)).status_code == 200

    assert metadata["jwks_uri"] == "http://testserver/.well-known/jwks.json"
    assert len(keys) == 1
    assert not PRIVATE_MEMBERS & set(keys[0])
    header = jwt.get_unverified_header(token)
    assert header["alg"] == algorithm and header["kid"] == keys[0]["kid"]
    # Any party can verify with the published key alone, no shared secret.
    public = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(
        token, public, algorithms=[algorithm], audience="garoupa-api", issuer="http://testserver"
    )
    assert claims["client_id"] == "svc"


def test_rotation_keeps_old_tokens_valid_while_their_key_is_listed(tmp_path: Path) -> None:
    old = write_key(tmp_path / "old.pem", "ed25519")
    new = write_key(tmp_path / "new.pem", "ed25519")
    (tmp_path / "old.pub.pem").write_bytes(public_pem(old))

    with serve(asym_settings(tmp_path, "EdDSA", old)) as api:
        Registry(api.app).add()  # type: ignore[arg-type]
        old_token = token_for(api)

    rotated = asym_settings(tmp_path, "EdDSA", new, previous=str(tmp_path / "old.pub.pem"))
    with serve(rotated) as api:
        assert api.get("/models/", headers=bearer(old_token)).status_code == 200
        new_token = token_for(api)
        kids = [k["kid"] for k in api.get("/.well-known/jwks.json").json()["keys"]]
    assert jwt.get_unverified_header(new_token)["kid"] == kids[0]
    assert jwt.get_unverified_header(old_token)["kid"] == kids[1]

    with serve(asym_settings(tmp_path, "EdDSA", new)) as api:
        refused = api.get("/models/", headers=bearer(old_token))
        assert [k["kid"] for k in api.get("/.well-known/jwks.json").json()["keys"]] == kids[:1]
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


def test_hs256_token_signed_with_the_public_key_is_refused(tmp_path: Path) -> None:
    key = write_key(tmp_path / "rsa.pem", "rsa")
    with serve(asym_settings(tmp_path, "RS256", key)) as api:
        Registry(api.app).add()  # type: ignore[arg-type]
        genuine = token_for(api)
        kid = jwt.get_unverified_header(genuine)["kid"]
        claims = jwt.decode(genuine, options={"verify_signature": False})
        # The classic confusion attack: HMAC keyed with the (public) PEM bytes.
        header = {"alg": "HS256", "typ": "at+jwt", "kid": kid}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = hmac.new(public_pem(key), signing_input.encode(), hashlib.sha256).digest()
        forged = f"{signing_input}.{b64(signature)}"
        response = api.get("/models/", headers=bearer(forged))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_hs256_publishes_no_keys(client: TestClient) -> None:
    assert client.get("/.well-known/jwks.json").json() == {"keys": []}
    assert "jwks_uri" not in client.get("/.well-known/oauth-authorization-server").json()


def test_unusable_key_configuration_stops_start_up_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs JWT_PRIVATE_KEY_FILE"):
        make_settings(tmp_path, jwt_algorithm="RS256")
    cases = [
        ("EdDSA", write_key(tmp_path / "rsa.pem", "rsa"), "holds a RS256 key"),
        ("RS256", write_key(tmp_path / "small.pem", "rsa", bits=1024), "at least 2048 bits"),
        ("RS256", tmp_path / "absent.pem", "does not exist"),
    ]
    (tmp_path / "junk.pem").write_text("not a key")
    cases.append(("EdDSA", tmp_path / "junk.pem", "not an unencrypted PEM key"))
    for algorithm, path, reason in cases:
        with pytest.raises(ConfigurationError, match=reason) as caught:
            Keyring.from_settings(asym_settings(tmp_path, algorithm, path))
        assert "\n" not in str(caught.value)
