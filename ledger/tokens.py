"""API tokens: named credentials with permissions, stored only as hashes.

A token's aggregate id derives from the hash of its secret, so authenticating a request is one
lookup by id; a second aggregate per name keeps names unique through the event store's own key.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger import ids


class Permission(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


# A permission grants itself and everything below it: writers read, admins do everything.
_GRANTS: dict[Permission, set[Permission]] = {
    Permission.READ: {Permission.READ},
    Permission.WRITE: {Permission.READ, Permission.WRITE},
    Permission.ADMIN: set(Permission),
}


def grants(held: frozenset[Permission] | set[Permission], needed: Permission) -> bool:
    return any(needed in _GRANTS[p] for p in held)


def hash_secret(secret: str) -> str:
    # Secrets are 256-bit random values we generate, so a fast hash is enough: there is
    # nothing to brute-force that a slow KDF would protect.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiToken(Aggregate):
    @staticmethod
    def create_id(token_hash: str, **_: object) -> UUID:
        return ids.token_id(token_hash)

    @event("Issued")
    def __init__(
        self,
        token_hash: str,
        name: str,
        permissions: list[str],
        issued_by: str,
        issued_at: datetime,
    ) -> None:
        self.token_hash = token_hash
        self.name = name
        self.permissions = sorted(permissions)
        self.issued_by = issued_by
        self.issued_at = issued_at
        self.revoked_at: datetime | None = None
        self.revoked_by: str | None = None

    @property
    def permission_set(self) -> frozenset[Permission]:
        return frozenset(Permission(p) for p in self.permissions)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @event("Revoked")
    def revoke(self, revoked_by: str, revoked_at: datetime) -> None:
        self.revoked_by = revoked_by
        self.revoked_at = revoked_at


class TokenName(Aggregate):
    """Claims a token name for one token, forever: revoked names are not reused."""

    @staticmethod
    def create_id(name: str, **_: object) -> UUID:
        return ids.token_name_id(name)

    @event("Claimed")
    def __init__(self, name: str, token_id: UUID) -> None:
        self.name = name
        self.token_id = token_id
