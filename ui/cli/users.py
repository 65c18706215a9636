"""`citewise users ...`: accounts, API tokens and knowledge-base readers (ui/users.py).

Passwords are never taken as arguments (`ps` would show them): they are read from
`--password-file`, else `$CITEWISE_NEW_PASSWORD`, else asked for twice on the terminal, else the
first line of standard input. A new API token is printed once, on standard output.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    u = sub.add_parser("users", help="user accounts, API tokens and who reads which kb")
    u_sub = u.add_subparsers(dest="users_command", required=True, metavar="ACTION")

    add = u_sub.add_parser("add", help="create an account (the password is asked for)")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may manage knowledge bases")
    add.add_argument("--password-file", help="read the password from this file's first line")
    add.set_defaults(func=cmd_add)

    rm = u_sub.add_parser("remove", help="delete an account and its tokens")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)

    pw = u_sub.add_parser("passwd", help="change an account's password")
    pw.add_argument("name")
    pw.add_argument("--password-file", help="read the password from this file's first line")
    pw.set_defaults(func=cmd_passwd)

    ls = u_sub.add_parser("list", help="accounts, with their number of tokens")
    ls.set_defaults(func=cmd_list)

    tok = u_sub.add_parser("token", help="API tokens: add, revoke, list")
    t_sub = tok.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    t_add = t_sub.add_parser("add", help="create a token for a user (printed once)")
    t_add.add_argument("name")
    t_add.add_argument("--label", default="", help="what the token is for")
    t_add.set_defaults(func=cmd_token_add)
    t_rev = t_sub.add_parser("revoke", help="revoke a token by its id")
    t_rev.add_argument("token_id")
    t_rev.set_defaults(func=cmd_token_revoke)
    t_ls = t_sub.add_parser("list", help="token ids, users and labels (never the tokens)")
    t_ls.add_argument("name", nargs="?")
    t_ls.set_defaults(func=cmd_token_list)

    kb = u_sub.add_parser(
        "readers", help="who may read a knowledge base (no names: everyone; admins always)"
    )
    kb.add_argument("kb")
    kb.add_argument("names", nargs="*", help="users who may read it; none: every user")
    kb.set_defaults(func=cmd_readers)


def _store(args: argparse.Namespace) -> Any:
    from retrieval.paths import data_dir, database_setting
    from ui.users import UserStore

    return UserStore.for_data_dir(data_dir(args.data_dir), database_setting(args.database_url))


def read_password(file: str | None) -> str:
    """The new password from a file, $CITEWISE_NEW_PASSWORD, the terminal or standard input."""
    if file:
        path = Path(file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"password file {path} not found")
        lines = path.read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""
    if os.environ.get("CITEWISE_NEW_PASSWORD"):
        return os.environ["CITEWISE_NEW_PASSWORD"]
    if sys.stdin.isatty():
        first = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != first:
            raise ValueError("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_add(args: argparse.Namespace) -> int:
    store = _store(args)
    store.add(args.name, read_password(args.password_file), admin=args.admin)
    role = "administrator" if args.admin else "user"
    print(f"added {role} {args.name}", file=sys.stderr)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    if not _store(args).remove(args.name):
        raise ValueError(f"no user {args.name!r}")
    print(f"removed {args.name} and their tokens", file=sys.stderr)
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    _store(args).passwd(args.name, read_password(args.password_file))
    print(f"password of {args.name} changed", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    readers = _store(args).readers()
    for user in _store(args).users():
        role = "admin" if user.admin else "user"
        reads = sorted(kb for kb, names in readers.items() if user.name in names)
        extra = f"  restricted kbs: {', '.join(reads)}" if reads else ""
        print(f"{user.name}\t{role}\t{user.tokens} tokens{extra}")
    return 0


def cmd_token_add(args: argparse.Namespace) -> int:
    token_id, token = _store(args).add_token(args.name, args.label)
    print(f"token {token_id} for {args.name} (shown once; store it now):", file=sys.stderr)
    print(token)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    if not _store(args).revoke_token(args.token_id):
        raise ValueError(f"no token with id {args.token_id!r} (`citewise users token list`)")
    print(f"revoked token {args.token_id}", file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    for tok in _store(args).tokens(args.name):
        print(f"{tok.id}\t{tok.user}\t{tok.created_at}\t{tok.label}")
    return 0


def cmd_readers(args: argparse.Namespace) -> int:
    _store(args).set_readers(args.kb, args.names)
    who = ", ".join(args.names) if args.names else "every user"
    print(f"{args.kb}: readable by {who} (and administrators)", file=sys.stderr)
    return 0
