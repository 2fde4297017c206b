"""docs/api.md against the app's own /openapi.json, so the reference cannot drift.

For every operation the OpenAPI document lists, docs/api.md must have a section
headed exactly "### `METHOD /path`", a "Scope:" line naming the operation's OAuth2
scopes (or "none"), and a status-code table row for every status code the
operation declares. A section for an operation the app does not have fails too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from tests.support import REPO_ROOT

API_REFERENCE = REPO_ROOT / "docs" / "api.md"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})

# "### `POST /predict/`": one operation's section starts here.
OPERATION_HEADING = re.compile(r"^### `([A-Z]+) (/\S*)`\s*$")
# Any Markdown heading ends the section before it.
ANY_HEADING = re.compile(r"^#{1,6} ")
SCOPE_LINE = re.compile(r"^Scope:\s*(.*?)\s*$")
# A status-table row: "| 404 | no such version |" (the code may be in backticks).
STATUS_ROW = re.compile(r"^\|\s*`?([1-5][0-9][0-9])`?\s*\|")

Operation = tuple[str, str]


@dataclass
class Section:
    """The lines of docs/api.md under one operation heading."""

    line: int
    lines: list[str] = field(default_factory=list)

    def scope_lines(self) -> list[str]:
        return [m.group(1) for m in map(SCOPE_LINE.match, self.lines) if m]

    def status_codes(self) -> set[str]:
        return {m.group(1) for m in map(STATUS_ROW.match, self.lines) if m}


@dataclass
class Reference:
    """docs/api.md split into operation sections, plus what could not be read."""

    sections: dict[Operation, Section]
    problems: list[str]


def read_reference() -> Reference:
    """Split docs/api.md at its headings; fenced code blocks never start or end a section."""
    assert API_REFERENCE.is_file(), f"{API_REFERENCE} is missing"
    sections: dict[Operation, Section] = {}
    problems: list[str] = []
    current: Section | None = None
    in_fence = False
    for number, line in enumerate(API_REFERENCE.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        elif not in_fence and ANY_HEADING.match(line):
            current = None
            heading = OPERATION_HEADING.match(line)
            if heading:
                operation = (heading.group(1), heading.group(2))
                if operation in sections:
                    problems.append(
                        f"line {number}: `{' '.join(operation)}` has a second section "
                        f"(the first is at line {sections[operation].line})"
                    )
                    continue
                current = sections[operation] = Section(line=number)
                continue
            if line.startswith("### `"):
                problems.append(f"line {number}: {line!r} is not of the form ### `METHOD /path`")
            continue
        if current is not None:
            current.lines.append(line)
    return Reference(sections, problems)


def openapi_operations(client: TestClient) -> tuple[dict[Operation, dict[str, Any]], Any]:
    """Every (METHOD, path) of the served /openapi.json, and the document's default security."""
    response = client.get("/openapi.json")
    assert response.status_code == 200, response.text
    spec = response.json()
    operations = {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }
    return operations, spec.get("security")


def required_scopes(operation: dict[str, Any], default_security: Any) -> set[str]:
    """The OAuth2 scopes the operation's security requirements name (empty: none)."""
    requirements = operation.get("security", default_security) or []
    return {
        scope for requirement in requirements for scopes in requirement.values() for scope in scopes
    }


def documented_scopes(value: str) -> set[str] | None:
    """`predict` -> {"predict"}; "none" -> set(); anything else unreadable -> None."""
    if value.lower() == "none":
        return set()
    scopes = set(re.findall(r"`([^`]+)`", value))
    return scopes or None


def test_every_operation_has_exactly_one_section(client: TestClient) -> None:
    operations, _ = openapi_operations(client)
    reference = read_reference()
    problems = list(reference.problems)
    for method, path in sorted(set(operations) - set(reference.sections), key=lambda o: o[::-1]):
        problems.append(
            f"{method} {path} is served (OpenAPI) but docs/api.md has no "
            f"section headed ### `{method} {path}`"
        )
    for method, path in sorted(set(reference.sections) - set(operations), key=lambda o: o[::-1]):
        line = reference.sections[(method, path)].line
        problems.append(
            f"docs/api.md line {line} documents {method} {path}, which the OpenAPI "
            "document does not list (removed or renamed route?)"
        )
    assert not problems, "docs/api.md and /openapi.json disagree:\n" + "\n".join(problems)


def test_scope_lines_match_openapi_security(client: TestClient) -> None:
    operations, default_security = openapi_operations(client)
    reference = read_reference()
    problems = []
    for (method, path), section in sorted(reference.sections.items()):
        operation = operations.get((method, path))
        if operation is None:
            continue  # reported by test_every_operation_has_exactly_one_section
        expected = required_scopes(operation, default_security)
        want = " ".join(f"`{s}`" for s in sorted(expected)) or "none"
        lines = section.scope_lines()
        if len(lines) != 1:
            problems.append(
                f"{method} {path}: expected one 'Scope: {want}' line in its section, "
                f"found {len(lines)}"
            )
            continue
        documented = documented_scopes(lines[0])
        if documented is None:
            problems.append(
                f"{method} {path}: cannot read 'Scope: {lines[0]}'; write 'Scope: {want}'"
            )
        elif documented != expected:
            problems.append(
                f"{method} {path}: docs/api.md says 'Scope: {lines[0]}', "
                f"OpenAPI security requires {want}"
            )
    assert not problems, "Scope lines out of date:\n" + "\n".join(problems)


def test_every_declared_status_code_is_in_its_section(client: TestClient) -> None:
    operations, _ = openapi_operations(client)
    reference = read_reference()
    problems = []
    for (method, path), operation in sorted(operations.items()):
        section = reference.sections.get((method, path))
        if section is None:
            continue  # reported by test_every_operation_has_exactly_one_section
        declared = {code for code in operation.get("responses", {}) if code.isdigit()}
        missing = sorted(declared - section.status_codes())
        if missing:
            problems.append(
                f"{method} {path}: OpenAPI declares {', '.join(missing)} but the status "
                f"table of its section (docs/api.md line {section.line}) has no row for "
                + ("it" if len(missing) == 1 else "them")
            )
    assert not problems, "Status codes missing from docs/api.md:\n" + "\n".join(problems)


def test_the_reader_finds_headings_scopes_and_status_rows() -> None:
    """The parser itself: fences do not split sections, and tables and scopes are read."""
    reference = read_reference()
    token = reference.sections[("POST", "/auth/token")]
    assert token.scope_lines() == ["none"]
    assert {"200", "400", "401"} <= token.status_codes()
    assert documented_scopes("`predict`") == {"predict"}
    assert documented_scopes("none") == set()
    assert documented_scopes("predict") is None
