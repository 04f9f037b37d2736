"""The console's people: created, listed and disabled by admins; signed in by password."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from ledger import ids
from ledger.application import LedgerApplication, Principal
from ledger.codes import check_code
from ledger.errors import NameTaken, NotFound
from ledger.users import (
    User,
    check_password,
    check_role,
    hash_password,
    password_matches,
)


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: str
    created_by: str
    created_at: datetime
    disabled_at: datetime | None

    @classmethod
    def of(cls, user: User) -> UserInfo:
        return cls(user.name, user.role, user.created_by, user.created_at, user.disabled_at)


class People:
    def __init__(self, app: LedgerApplication) -> None:
        self.app = app

    def create(self, name: object, password: object, role: object, created_by: str) -> UserInfo:
        name = check_code(name, "name")
        permission = check_role(role)
        user = User(
            name=name,
            role=permission.value,
            password_hash=hash_password(check_password(password)),
            created_by=created_by,
            created_at=datetime.now(UTC),
        )
        try:
            self.app.save(user)
        except IntegrityError:
            raise NameTaken(f"a user named {name!r} already exists", name=name) from None
        return UserInfo.of(user)

    def _get(self, name: str) -> User | None:
        try:
            return self.app.repository.get(ids.user_id(name))  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            return None

    def get(self, name: str) -> UserInfo:
        user = self._get(name)
        if user is None:
            raise NotFound(f"no user is named {name!r}", name=name)
        return UserInfo.of(user)

    def disable(self, name: str, disabled_by: str) -> UserInfo:
        user = self._get(name)
        if user is None:
            raise NotFound(f"no user is named {name!r}", name=name)
        if user.is_active:
            user.disable(disabled_by=disabled_by, disabled_at=datetime.now(UTC))
            self.app.save(user)
        return UserInfo.of(user)

    def list(self) -> list[UserInfo]:
        topic = get_topic(User.Created)  # type: ignore[attr-defined]
        users: list[UserInfo] = []
        start = 1
        while True:
            page = self.app.recorder.select_notifications(start=start, limit=500, topics=[topic])
            for notification in page:
                user: User = self.app.repository.get(notification.originator_id)
                users.append(UserInfo.of(user))
            if len(page) < 500:
                return sorted(users, key=lambda u: u.name)
            start = page[-1].id + 1

    def sign_in(self, name: str, password: str) -> Principal | None:
        """The person's principal when the name and password match an active user; ``None``
        otherwise, taking as long whether the name exists or not."""
        user = self._get(name) if isinstance(name, str) and 0 < len(name) <= 64 else None
        matches = password_matches(user.password_hash if user else None, password)
        if user is None or not matches or not user.is_active:
            return None
        return Principal(user.name, user.permissions)

    def principal(self, name: str) -> Principal | None:
        """The active user's principal, read fresh: a disabled user's sessions end at once."""
        user = self._get(name)
        if user is None or not user.is_active:
            return None
        return Principal(user.name, user.permissions)
