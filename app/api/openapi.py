"""Answers the OpenAPI document lists for every operation they can come from.

Some refusals are not any one route's: every protected operation can be over its
scope's rate limit (429) or find the revocation state or rate-limit store
unreachable (503), and every request body has a byte limit (413). Declaring them
route by route had left most operations without them, so clients generated from
the document did not know to honour Retry-After; they are added here, after
FastAPI builds the document, wherever a route did not declare its own.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from app.schemas.errors import ErrorResponse

_ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorResponse"}
_RETRY_AFTER = {
    "description": "Seconds to wait before retrying.",
    "schema": {"type": "integer", "minimum": 1},
}


def _answer(description: str, *, retry_after: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ERROR_SCHEMA}},
    }
    if retry_after:
        answer["headers"] = {"Retry-After": _RETRY_AFTER}
    return answer


_PROTECTED = {
    "429": _answer("Over the scope's rate limit (RATE_LIMIT_*).", retry_after=True),
    "503": _answer(
        "The token revocation state or the rate-limit store is unreachable; retry.",
        retry_after=True,
    ),
}
_WITH_BODY = {"413": _answer("The request body is over this path's byte limit.", retry_after=False)}


def document_common_answers(app: FastAPI) -> None:
    """Make `app.openapi()` list the 429, 503 and 413 answers described above."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("ErrorResponse", ErrorResponse.model_json_schema())
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                extra = {**(_PROTECTED if operation.get("security") else {})}
                if "requestBody" in operation:
                    extra.update(_WITH_BODY)
                for status, answer in extra.items():
                    declared = responses.setdefault(status, answer)
                    if "headers" in answer:
                        # A route's own 429 or 503 is answered with Retry-After all the same.
                        declared.setdefault("headers", {}).update(answer["headers"])
        return document

    app.openapi = openapi  # type: ignore[method-assign]
