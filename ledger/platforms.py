"""A sales platform as the seller configured it: which orders to import, and how.

Credentials never enter the event log: they are stored encrypted, outside it, by a
``CredentialVault`` (``adapters/credentials.py``), in a table the ledger can overwrite and
delete. The events record only which credential names were set or deleted; the aggregate knows
the names it holds and a revision that changes with every credential change, which is how the
dispatcher knows to rebuild its adapter and send everything again without ever comparing
secrets.

Events written before that (class version 1) hold the whole credentials in their settings.
Upcasting lifts them out of the settings on load, into ``legacy_credentials``, a mapping whose
``repr`` shows names only, kept for one purpose: the vault copies them into its table on first
use. A later credential change supersedes them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger import ids
from ledger.orders import OrderStatus


class PlatformType(StrEnum):
    VTEX = "vtex"
    WEBHOOK = "webhook"


class ImportFrom(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PAYMENT_CONFIRMED = "payment_confirmed"


_FIRST_IMPORTED = {
    ImportFrom.AWAITING_PAYMENT: {
        OrderStatus.AWAITING_PAYMENT,
        OrderStatus.PAYMENT_IN_ANALYSIS,
        OrderStatus.PAYMENT_CONFIRMED,
        OrderStatus.INVOICED,
    },
    ImportFrom.PAYMENT_CONFIRMED: {OrderStatus.PAYMENT_CONFIRMED, OrderStatus.INVOICED},
}


class LegacyCredentials(Mapping[str, str]):
    """Credential values read from an event of before they left the event log. Its ``repr``
    names the credentials and never shows a value, so no log of an event or an aggregate can."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = {str(k): "" if v is None else str(v) for k, v in values.items()}

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"LegacyCredentials(names={sorted(self._values)!r})"


def _upcast_settings(state: dict[str, Any]) -> None:
    """Version 1 events held credential values in their settings: lift them out."""
    settings = dict(state["settings"])
    legacy = settings.pop("credentials", None) or {}
    state["settings"] = settings
    state["credentials_set"] = sorted(legacy)
    state["credentials_deleted"] = []
    state["legacy_credentials"] = LegacyCredentials(legacy)


class Platform(Aggregate):
    @staticmethod
    def create_id(name: str) -> UUID:
        return ids.platform_id(name)

    class Configured(Aggregate.Created):
        class_version = 2
        name: str
        settings: dict[str, Any]
        credentials_set: list[str] | None
        credentials_deleted: list[str] | None

        upcast_v1_v2 = staticmethod(_upcast_settings)

        def apply(self, platform: Platform) -> None:
            platform.note_credentials(self)

    class Reconfigured(Aggregate.Event):
        class_version = 2
        settings: dict[str, Any]
        credentials_set: list[str] | None
        credentials_deleted: list[str] | None

        upcast_v1_v2 = staticmethod(_upcast_settings)

        def apply(self, platform: Platform) -> None:
            platform.settings = dict(self.settings)
            platform.note_credentials(self)

    def __init__(
        self,
        name: str,
        settings: dict[str, Any],
        credentials_set: list[str] | None = None,
        credentials_deleted: list[str] | None = None,
    ) -> None:
        self.name = name
        self.settings = dict(settings)
        self.credential_names: frozenset[str] = frozenset()
        self.credentials_revision = 0
        self.legacy_credentials: LegacyCredentials | None = None

    @classmethod
    def configured(
        cls, name: str, settings: dict[str, Any], credentials_set: Collection[str] = ()
    ) -> Platform:
        return cls(
            name=name,
            settings=settings,
            credentials_set=sorted(credentials_set),
            credentials_deleted=[],
        )

    def reconfigure(
        self,
        settings: dict[str, Any],
        credentials_set: Collection[str] = (),
        credentials_deleted: Collection[str] = (),
    ) -> None:
        """Record new settings and credential changes, if there are any."""
        if settings != self.settings or credentials_set or credentials_deleted:
            self.trigger_event(
                Platform.Reconfigured,
                settings=settings,
                credentials_set=sorted(credentials_set),
                credentials_deleted=sorted(credentials_deleted),
            )

    def note_credentials(self, event: Configured | Reconfigured) -> None:
        legacy: LegacyCredentials | None = event.__dict__.get("legacy_credentials")
        if legacy is not None:
            # A version 1 event: the whole credentials as they stood then.
            if self.legacy_credentials is None or dict(legacy) != dict(self.legacy_credentials):
                self.credentials_revision += 1 if (legacy or self.credential_names) else 0
            self.credential_names = frozenset(legacy)
            self.legacy_credentials = legacy
        elif event.credentials_set or event.credentials_deleted:
            names = (self.credential_names | set(event.credentials_set or ())) - set(
                event.credentials_deleted or ()
            )
            self.credential_names = frozenset(names)
            self.credentials_revision += 1
            # The vault copied any legacy values before this change was decided.
            self.legacy_credentials = None

    def __repr__(self) -> str:
        return (
            f"Platform(name={self.name!r}, version={self.version}, "
            f"credentials={sorted(self.credential_names)!r}, "
            f"credentials_revision={self.credentials_revision})"
        )

    @property
    def type(self) -> PlatformType:
        return PlatformType(self.settings["type"])

    @property
    def import_from(self) -> ImportFrom:
        return ImportFrom(self.settings["import_from"])

    @property
    def carriers(self) -> dict[str, str]:
        return dict(self.settings.get("carriers") or {})

    def imports(self, status: OrderStatus) -> bool:
        """Whether an order first seen in ``status`` is imported now (else acknowledged)."""
        return status in _FIRST_IMPORTED[self.import_from]

    def reserves(self) -> Callable[[OrderStatus], bool]:
        """Whether an order in a status holds a reservation here. The seller may say so per
        platform (``reserve_while_pending``); by default VTEX holds the reservation itself
        while payment is pending, and every other platform reserves at import."""
        pending_reserves = self.settings.get("reserve_while_pending")
        if pending_reserves is None:
            pending_reserves = self.type is not PlatformType.VTEX
        if not pending_reserves:
            return lambda status: (
                status
                not in (
                    OrderStatus.AWAITING_PAYMENT,
                    OrderStatus.PAYMENT_IN_ANALYSIS,
                )
            )
        return lambda status: True

    def hold_reason(self, carrier: str | None) -> str | None:
        if carrier is None:
            return "the order has no carrier"
        if carrier not in self.carriers:
            return f"carrier {carrier!r} has no mapping"
        return None

    def public(self) -> dict[str, Any]:
        """The settings, with the names of the credentials held (never their values)."""
        return {"name": self.name, **self.settings, "credentials": sorted(self.credential_names)}


WITHOUT_A_KEY_MESSAGE = (
    "credentials are stored encrypted, and this ledger has no secret key: set "
    "LEDGER_SECRET_KEY (the same in every process) and send them again"
)


class CredentialVault(Protocol):
    """Where credential values live, outside the event log (``adapters/credentials.py``).

    Each stored credential carries the revision it was written for: one above the platform's
    ``credentials_revision`` means a write whose event was never recorded (a crash, or a
    concurrent PUT that has not saved yet).
    """

    @property
    def can_encrypt(self) -> bool:
        """Whether a key is set: without one, no credential can be set or deleted."""
        ...

    def held(self, name: str, platform: Platform | None) -> dict[str, int]:
        """The credential names stored for platform ``name``, each with the revision it was
        written for (after copying the platform's legacy credentials, if it has any and none
        are stored)."""
        ...

    def holds(self, platform: str, name: str, value: str) -> bool:
        """Whether ``name`` is stored with exactly ``value`` (False if unreadable)."""
        ...

    def write(
        self, platform: str, values: Mapping[str, str], deleted: Collection[str], revision: int
    ) -> None:
        """Store (overwrite) ``values`` for ``revision`` and erase ``deleted``, in one
        transaction; without a key, raise ``SecretKeyMissing`` before changing anything."""
        ...
