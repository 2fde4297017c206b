"""What Swagger UI and OAuth2 tooling read: the OpenAPI document and RFC 8414 metadata."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_openapi_declares_client_credentials_flow_with_scopes(client: TestClient) -> None:
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    flow = schemes["OAuth2ClientCredentials"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/auth/token"
    assert set(flow["scopes"]) == {"predict", "train", "admin", "review"}


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
    assert metadata["scopes_supported"] == ["predict", "train", "admin", "review"]
    assert metadata["response_types_supported"] == []


def test_unknown_route_is_json_404(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_every_operation_is_documented(client: TestClient) -> None:
    """Summary, description, an example for every request body, and the errors it can give."""
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    undocumented = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            if not operation.get("summary") or not operation.get("description"):
                undocumented.append(f"{where}: summary/description")
            body = operation.get("requestBody")
            if body:
                content = next(iter(body["content"].values()))
                schema = content.get("schema", {})
                ref = schema.get("$ref", "").rsplit("/", 1)[-1]
                has_example = (
                    "example" in content
                    or "examples" in content
                    or "examples" in schemas.get(ref, {})
                    or any("example" in p for p in schema.get("properties", {}).values())
                    or ref.startswith("Body_")
                )
                if not has_example:
                    undocumented.append(f"{where}: request example")
            if operation.get("security") and not {"401", "403"} <= set(operation["responses"]):
                undocumented.append(f"{where}: 401/403 responses")
    assert undocumented == []


def test_every_operation_lists_the_refusals_it_can_give_beyond_its_own(
    client: TestClient,
) -> None:
    """Rate limits and an unreachable store on every protected operation, a body limit
    on every body: clients generated from the document must know to honour them."""
    spec = client.get("/openapi.json").json()
    assert "ErrorResponse" in spec["components"]["schemas"]
    missing = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            expected = set()
            if operation.get("security"):
                expected |= {"429", "503"}
            if "requestBody" in operation:
                expected.add("413")
            missing += [
                f"{method.upper()} {path}: {s}" for s in expected - set(operation["responses"])
            ]
    assert missing == []
    predict = spec["paths"]["/predict/"]["post"]["responses"]
    assert "Retry-After" in predict["429"]["headers"]
    assert "Retry-After" in predict["503"]["headers"]
