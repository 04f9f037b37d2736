"""A sales platform as the seller configured it: which orders to import, and how.

Credentials are kept for the adapters that talk to the platform and are never shown back.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any
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


class Platform(Aggregate):
    @staticmethod
    def create_id(name: str) -> UUID:
        return ids.platform_id(name)

    class Configured(Aggregate.Created):
        name: str
        settings: dict[str, Any]

    class Reconfigured(Aggregate.Event):
        settings: dict[str, Any]

        def apply(self, platform: Platform) -> None:
            platform.settings = dict(self.settings)

    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        self.name = name
        self.settings = dict(settings)

    def reconfigure(self, settings: dict[str, Any]) -> None:
        if settings != self.settings:
            self.trigger_event(Platform.Reconfigured, settings=settings)

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
        """The settings without credentials."""
        shown = {k: v for k, v in self.settings.items() if k != "credentials"}
        shown["credentials"] = sorted((self.settings.get("credentials") or {}).keys())
        return {"name": self.name, **shown}
