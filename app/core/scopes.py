"""The OAuth2 scopes a client can hold."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    """What a token lets its bearer do."""

    predict = "predict"
    train = "train"
    admin = "admin"
    # People who review predictions in the console (issue 15); not for machines.
    review = "review"


SCOPE_DESCRIPTIONS: dict[str, str] = {
    Scope.predict: "Predict categories and send feedback.",
    Scope.train: "Upload datasets, train, inspect and activate models.",
    Scope.admin: "Manage clients and read service statistics.",
    Scope.review: "Sign in to the console to watch predictions and review uncertain ones.",
}

DEFAULT_CLIENT_SCOPES: tuple[Scope, ...] = (Scope.predict, Scope.train)


def parse_scopes(text: str) -> tuple[Scope, ...]:
    """Parse a space-separated scope list into canonical order; ValueError names unknown ones."""
    names = set(text.split())
    unknown = sorted(names - {s.value for s in Scope})
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(unknown)}")
    return tuple(s for s in Scope if s.value in names)


def format_scopes(scopes: tuple[Scope, ...] | list[Scope] | set[Scope]) -> str:
    """Space-separated scopes in canonical order (RFC 6749 §3.3)."""
    chosen = set(scopes)
    return " ".join(s.value for s in Scope if s in chosen)
