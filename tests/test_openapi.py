"""What Swagger UI and OAuth2 tooling read: the OpenAPI document and RFC 8414 metadata."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_openapi_declares_client_credentials_flow_with_scopes(client: TestClient) -> None:
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    flow = schemes["OAuth2ClientCredentials"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/auth/token"
    assert set(flow["scopes"]) == {"predict", "train", "admin"}


def test_protected_routes_declare_their_scope(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    security = paths["/predict/"]["post"]["security"]
    assert security == [{"OAuth2ClientCredentials": ["predict"]}]


def test_token_endpoint_documents_form_body(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/auth/token"]["post"]
    form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form["required"] == ["grant_type"]
    assert {"400", "401", "429"} <= set(operation["responses"])


def test_authorization_server_metadata(client: TestClient) -> None:
    response = client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["issuer"] == "http://testserver"
    assert metadata["token_endpoint"] == "http://testserver/auth/token"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert metadata["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert metadata["scopes_supported"] == ["predict", "train", "admin"]
    assert metadata["response_types_supported"] == []


def test_unknown_route_is_json_404(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
