"""Register and manage the OAuth2 clients allowed to use Garoupa.

Acts on the database that DATABASE_URL (environment or .env) names, creating
or migrating its schema first. Errors go to stderr with exit code 1. Every
change is recorded in the audit trail as `cli:<your OS user>`; `audit` reads it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

# Run as `python scripts/manage_clients.py`: make the project importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.core.config import ConfigurationError, load_settings  # noqa: E402
from app.core.errors import GaroupaError  # noqa: E402
from app.core.scopes import DEFAULT_CLIENT_SCOPES, Scope, format_scopes  # noqa: E402
from app.core.security import build_secret_hasher  # noqa: E402
from app.db.database import open_database  # noqa: E402
from app.services.audit import Actor, AuditAction, AuditFilter, AuditTrail  # noqa: E402
from app.services.clients import (  # noqa: E402
    MIN_SECRET_LENGTH,
    ClientRecord,
    ClientService,
    LastActiveAdmin,
)

SCOPE_HELP = f"space-separated scopes out of: {', '.join(s.value for s in Scope)}"
CLIENT_ID_HELP = "the client's id, as `list` shows it"
FORCE_HELP = (
    "break glass: allow this even when the client is the last active one with the admin "
    "scope (the admin API is then unusable until an admin client is added again)"
)
SECRET_STDIN_HELP = (
    "read the secret from standard input (one line), keeping it out of shell history "
    "and the process list: printf '%%s' \"$SECRET\" | manage_clients.py ... --secret-stdin"
)


class CommandError(Exception):
    """A refusal to report on stderr with exit code 1."""


@contextmanager
def database_session() -> Iterator[Session]:
    """A session on the configured database, schema brought up to date."""
    settings = load_settings()
    with (
        open_database(settings.database_url, migrate=True) as database,
        database.sessions() as session,
    ):
        yield session


@contextmanager
def client_service() -> Iterator[ClientService]:
    """A ClientService on the configured database."""
    with database_session() as session:
        yield ClientService(session, build_secret_hasher())


def _as_dict(client: ClientRecord) -> dict[str, object]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "scopes": format_scopes(client.scopes),
        "active": client.is_active,
        "created_at": client.created_at.isoformat(),
        "last_used_at": client.last_used_at.isoformat() if client.last_used_at else None,
        "tokens_valid_after": client.tokens_valid_after.isoformat(),
    }


def _print_secret(secret: str) -> None:
    print(f"Client secret: {secret}")
    print("Store it now: it is shown only once and cannot be recovered.")


def _secret_from_stdin() -> str:
    """One line of standard input (a prompt without echo when it is a terminal)."""
    if sys.stdin.isatty():
        return getpass.getpass("Client secret: ")
    line = sys.stdin.readline()
    # Only the line ending is dropped: spaces are part of a secret.
    secret = line.removesuffix("\n").removesuffix("\r")
    if not secret:
        raise CommandError("--secret-stdin: standard input held no secret.")
    return secret


def _given_secret(args: argparse.Namespace) -> str | None:
    """The secret from the command line or standard input; None to generate one."""
    positional: str | None = getattr(args, "client_secret", None)
    if args.secret_stdin:
        if positional is not None:
            raise CommandError("Give the secret either as CLIENT_SECRET or with --secret-stdin.")
        return _secret_from_stdin()
    return positional


def _add(args: argparse.Namespace) -> None:
    given = _given_secret(args)
    with client_service() as clients:
        client, secret = clients.register(
            name=args.name,
            client_id=args.client_id,
            secret=given,
            scopes=args.scopes,
            actor=Actor.operator(),
        )
    print(
        f"Registered client {client.client_id!r} ({client.name}) "
        f"with scopes: {format_scopes(client.scopes)}"
    )
    if given is None:
        _print_secret(secret)


def _list(args: argparse.Namespace) -> None:
    with client_service() as clients:
        records = clients.list()
    if args.json:
        print(json.dumps([_as_dict(c) for c in records], indent=2))
        return
    if not records:
        print("No clients registered. Add one with: manage_clients.py add NAME CLIENT_ID")
        return
    table = Table("client_id", "name", "scopes", "active", "created", "last used")
    for c in records:
        table.add_row(
            c.client_id,
            c.name,
            format_scopes(c.scopes),
            "yes" if c.is_active else "no",
            c.created_at.strftime("%Y-%m-%d %H:%M"),
            c.last_used_at.strftime("%Y-%m-%d %H:%M") if c.last_used_at else "never",
        )
    # Not a terminal (a pipe, a test): don't squeeze columns to 80 characters.
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def _show(args: argparse.Namespace) -> None:
    with client_service() as clients:
        record = _as_dict(clients.get(args.client_id))
    if args.json:
        print(json.dumps(record, indent=2))
        return
    for key, value in record.items():
        print(f"{key:>18}: {value}")


def _rename(args: argparse.Namespace) -> None:
    with client_service() as clients:
        client = clients.rename(args.client_id, args.name, actor=Actor.operator())
    print(f"Renamed {client.client_id!r} to {client.name!r}.")


def _deactivate(args: argparse.Namespace) -> None:
    with client_service() as clients:
        clients.set_active(args.client_id, active=False, actor=Actor.operator(), force=args.force)
    print(f"Deactivated {args.client_id!r}; its tokens stop working within seconds.")


def _activate(args: argparse.Namespace) -> None:
    with client_service() as clients:
        clients.set_active(args.client_id, active=True, actor=Actor.operator())
    print(f"Activated {args.client_id!r}.")


def _rotate_secret(args: argparse.Namespace) -> None:
    given = _given_secret(args)
    with client_service() as clients:
        secret = clients.rotate_secret(args.client_id, given, actor=Actor.operator())
    print(f"Rotated the secret of {args.client_id!r}; its old tokens stop working within seconds.")
    if given is None:
        _print_secret(secret)


def _set_scopes(args: argparse.Namespace) -> None:
    with client_service() as clients:
        client = clients.set_scopes(
            args.client_id, args.scopes, actor=Actor.operator(), force=args.force
        )
    print(
        f"Scopes of {client.client_id!r} are now: {format_scopes(client.scopes)} "
        "(outstanding tokens revoked)"
    )


def _delete(args: argparse.Namespace) -> None:
    if not args.yes and not _confirm(f"Delete client {args.client_id!r}? [y/N] "):
        raise CommandError("Not deleted (confirm with 'y', or pass --yes).")
    with client_service() as clients:
        clients.delete(args.client_id, actor=Actor.operator(), force=args.force)
    print(f"Deleted {args.client_id!r}.")


def _audit(args: argparse.Namespace) -> None:
    where = AuditFilter(actor=args.actor, action=args.action)
    with database_session() as session:
        events = [
            {
                "id": e.id,
                "created_at": e.created_at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "outcome": e.outcome,
                "detail": e.detail,
            }
            for e in AuditTrail(session).page(where, limit=args.limit).events
        ]
    if args.json:
        print(json.dumps(events, indent=2))
        return
    if not events:
        print("No audit events recorded yet.")
        return
    table = Table("time (UTC)", "actor", "action", "target", "outcome", "detail")
    for event in events:
        detail = event["detail"]
        table.add_row(
            str(event["created_at"])[:19].replace("T", " "),
            str(event["actor"]),
            str(event["action"]),
            str(event["target"] or ""),
            str(event["outcome"]),
            json.dumps(detail, ensure_ascii=False) if detail else "",
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _confirm(question: str) -> bool:
    try:
        answer = input(question)
    except EOFError:
        print()
        return False
    return answer.strip().lower() in {"y", "yes"}


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface, with help on every command."""
    parser = argparse.ArgumentParser(
        prog="manage_clients.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, handler: Callable[[argparse.Namespace], None], help_text: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    add = command("add", _add, "Register a new client.")
    add.add_argument("name", metavar="NAME", help="human-readable name, e.g. 'My Test App'")
    add.add_argument("client_id", metavar="CLIENT_ID", help="the id the client authenticates as")
    add.add_argument(
        "client_secret",
        metavar="CLIENT_SECRET",
        nargs="?",
        help=f"at least {MIN_SECRET_LENGTH} characters; omitted: a random one is generated "
        "and printed once. Visible in shell history and the process list: prefer "
        "--secret-stdin",
    )
    default_scopes = format_scopes(DEFAULT_CLIENT_SCOPES)
    add.add_argument(
        "--scopes", default=default_scopes, help=f"{SCOPE_HELP} (default: '{default_scopes}')"
    )
    add.add_argument("--secret-stdin", action="store_true", help=SECRET_STDIN_HELP)

    listing = command("list", _list, "List every client.")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")

    show = command("show", _show, "Show one client.")
    show.add_argument("client_id", metavar="CLIENT_ID", help=CLIENT_ID_HELP)
    show.add_argument("--json", action="store_true", help="print JSON")

    rename = command("rename", _rename, "Change a client's human-readable name (its id stays).")
    rename.add_argument("client_id", metavar="CLIENT_ID", help=CLIENT_ID_HELP)
    rename.add_argument("name", metavar="NAME", help="the new name, e.g. 'Billing Service'")

    deactivate = command("deactivate", _deactivate, "Deactivate a client and revoke its tokens.")
    deactivate.add_argument("client_id", metavar="CLIENT_ID", help=CLIENT_ID_HELP)
    deactivate.add_argument("--force", action="store_true", help=FORCE_HELP)

    activate = command("activate", _activate, "Re-activate a client (its old tokens stay revoked).")
    activate.add_argument("client_id", metavar="CLIENT_ID", help=CLIENT_ID_HELP)

    rotate = command(
        "rotate-secret",
        _rotate_secret,
        "Replace a client's secret (generated and printed once, or read with --secret-stdin) "
        "and revoke its tokens.",
    )
    rotate.add_argument("client_id", metavar="CLIENT_ID", help=CLIENT_ID_HELP)
    rotate.add_argument(
        "--secret-stdin",
        action="store_true",
        help=SECRET_STDIN_HELP + "; omitted: a random secret is generated and printed once",
    )

    scopes = command("set-scopes", _set_scopes, "Replace a client's allowed scopes.")
    scopes.add_argument("client_id", metavar="CLIENT_ID", help=CLIENT_ID_HELP)
    scopes.add_argument("scopes", metavar="SCOPES", help=f"{SCOPE_HELP}, e.g. 'predict'")
    scopes.add_argument("--force", action="store_true", help=FORCE_HELP)

    delete = command("delete", _delete, "Delete a client (asks first).")
    delete.add_argument("client_id", metavar="CLIENT_ID", help=CLIENT_ID_HELP)
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.add_argument("--force", action="store_true", help=FORCE_HELP)

    audit = command(
        "audit",
        _audit,
        "Show the audit trail, newest first: client changes (here and through the admin API), "
        "model activations, training starts and dataset uploads.",
    )
    audit.add_argument(
        "--limit", type=_positive, default=50, help="how many events to show (default: 50)"
    )
    audit.add_argument(
        "--action",
        choices=[a.value for a in AuditAction],
        metavar="ACTION",
        help=f"only events of this action: {', '.join(a.value for a in AuditAction)}",
    )
    audit.add_argument("--actor", help="only events by this actor: a client id, or cli:<os user>")
    audit.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 on success, 1 on a refused or failed operation."""
    # The SQLite database this may create holds secret hashes: this user's only.
    os.umask(0o077)
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except LastActiveAdmin as exc:
        print(f"error: {exc} (--force overrides this)", file=sys.stderr)
        return 1
    except (GaroupaError, CommandError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"error: database unavailable ({type(exc).__name__})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
