"""Checks on user-supplied text that ends up in files, spreadsheets and metric labels."""

from __future__ import annotations

import unicodedata

CATEGORY_NAME_MAX_CHARS = 100
# A cell starting with one of these is a formula in Excel, LibreOffice and Google
# Sheets (OWASP "CSV injection"); tab and CR also start one after some importers strip.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Unicode "other" (control, format, surrogate, private use, unassigned) and the
# line/paragraph separators: invisible or line-breaking characters in a label.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def validate_category_name(value: str) -> str:
    """The NFKC-normalised, trimmed category name; ValueError saying why it is unsafe."""
    if value[:1] in _FORMULA_PREFIXES:
        raise ValueError("must not start with =, +, -, @, tab or carriage return")
    name = unicodedata.normalize("NFKC", value).strip()
    if not name:
        raise ValueError("must not be empty")
    if len(name) > CATEGORY_NAME_MAX_CHARS:
        raise ValueError(f"must be at most {CATEGORY_NAME_MAX_CHARS} characters")
    if name.startswith(_FORMULA_PREFIXES):
        raise ValueError("must not start with =, +, -, @, tab or carriage return")
    if any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in name):
        raise ValueError("must not contain control or invisible formatting characters")
    return name
