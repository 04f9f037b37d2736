"""People who use the console: a name, a role, a password kept only as an argon2 hash.

Tokens stay for machines; a person signs in with a name and a password and acts with the
permissions of their role. A user is never deleted, only disabled, so that every movement's
``recorded_by`` keeps naming someone the ledger knows.
"""

from __future__ import annotations

from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventsourcing.domain import Aggregate, event

from ledger import ids
from ledger.errors import InvalidInput
from ledger.tokens import Permission

MIN_PASSWORD = 8
# argon2 hashes whatever it is given: a megabyte "password" would be a cheap way to burn CPU.
MAX_PASSWORD = 256
_hasher = PasswordHasher()
# Verified against when the name is unknown, so that a wrong name takes as long as a wrong
# password and sign-in does not tell which names exist.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def check_password(password: object) -> str:
    if not isinstance(password, str) or not password:
        raise InvalidInput("password is required", field="password")
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"the password must have at least {MIN_PASSWORD} characters", field="password"
        )
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(
            f"the password must have at most {MAX_PASSWORD} characters", field="password"
        )
    return password


def check_role(role: object) -> Permission:
    try:
        return Permission(role)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidInput("role must be read, write or admin", field="role") from None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


class User(Aggregate):
    @staticmethod
    def create_id(name: str, **_: object) -> object:
        return ids.user_id(name)

    @event("Created")
    def __init__(
        self, name: str, role: str, password_hash: str, created_by: str, created_at: datetime
    ) -> None:
        self.name = name
        self.role = role
        self.password_hash = password_hash
        self.created_by = created_by
        self.created_at = created_at
        self.disabled_at: datetime | None = None
        self.disabled_by: str | None = None

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None

    @property
    def permissions(self) -> frozenset[Permission]:
        return frozenset({Permission(self.role)})

    @event("Disabled")
    def disable(self, disabled_by: str, disabled_at: datetime) -> None:
        self.disabled_by = disabled_by
        self.disabled_at = disabled_at

    @event("PasswordChanged")
    def change_password(self, password_hash: str) -> None:
        self.password_hash = password_hash
