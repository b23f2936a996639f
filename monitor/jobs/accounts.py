"""Accounts of the web application: who may read, who may change, who adds people.

Passwords are kept only as Argon2id hashes made by argon2-cffi (the
memory-hard winner of the Password Hashing Competition, OWASP's first choice;
argon2-cffi is maintained, ships wheels, and `check_needs_rehash` lets the
parameters grow with later releases: a login re-hashes an old hash).
A login for an unknown name costs as much as one for a known name, so the
time taken does not tell which names exist.  Roles: `viewer` reads and
exports, `editor` also changes (watches, claims, merges, tracking, alerts),
`admin` also deletes and manages accounts.
"""

from __future__ import annotations

import hashlib
from functools import cache

from monitor.jobs.corrections import Actor
from monitor.workspace import Workspace
from storage.records import ROLES, UserRecord

ADMIN, EDITOR, VIEWER = "admin", "editor", "viewer"
RANK = {VIEWER: 0, EDITOR: 1, ADMIN: 2}
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
MAX_NAME = 64


class AccountError(ValueError):
    """A name, role or password that cannot be used; the message says why."""


@cache
def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()  # Argon2id, RFC 9106's low-memory profile (64 MiB, 3 passes)


@cache
def _dummy_hash() -> str:
    return _hasher().hash("no such user: the same work as a real check")


def may(role: str, needed: str) -> bool:
    """Whether `role` includes what `needed` may do."""
    return RANK.get(role, -1) >= RANK[needed]


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or not all(c.isprintable() and not c.isspace() for c in name):
        raise AccountError(f"a user name is 1 to {MAX_NAME} printable characters without spaces")
    return name


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"a password has at most {MAX_PASSWORD} characters")


def add_user(ws: Workspace, actor: Actor, name: str, password: str, role: str) -> UserRecord:
    if role not in ROLES:
        raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
    name = check_name(name)
    check_password(password)
    with ws.repository.transaction() as repo:
        user = repo.add_user(name, _hasher().hash(password), role, actor.name)
        repo.add_audit(actor.name, actor.via, "user.add", f"user {name}", {"role": role})
    return user


def remove_user(ws: Workspace, actor: Actor, name: str) -> UserRecord:
    with ws.repository.transaction() as repo:
        user = repo.remove_user(name)
        repo.add_audit(actor.name, actor.via, "user.remove", f"user {name}", {"role": user.role})
    return user


def verify_login(ws: Workspace, name: str, password: str) -> UserRecord | None:
    """The user when `password` is theirs, else None (in about the same time either way)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    user = ws.repository.user_named(name.strip()) if len(password) <= MAX_PASSWORD else None
    stored = ws.repository.password_hash(user.id) if user else None
    try:
        _hasher().verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or stored is None:
        return None
    if _hasher().check_needs_rehash(stored):
        ws.repository.set_password_hash(user.id, _hasher().hash(password))
    return user


def session_stamp(ws: Workspace, user_id: int) -> str | None:
    """A short digest of the user's password hash: a session carries it, so a new password or a removed
    account ends every session made before."""
    stored = ws.repository.password_hash(user_id)
    return hashlib.sha256(stored.encode()).hexdigest()[:24] if stored else None
