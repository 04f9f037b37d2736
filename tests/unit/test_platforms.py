"""A platform's import and reservation policy, and the credentials its events (never) hold."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    Mapper,
    StoredEvent,
    UUIDAsHex,
)
from eventsourcing.utils import get_topic

from ledger import ids
from ledger.orders import OrderStatus
from ledger.platforms import Platform
from ledger.transcoding import FlatJSONTranscoder

PENDING = (OrderStatus.AWAITING_PAYMENT, OrderStatus.PAYMENT_IN_ANALYSIS)


def platform(**settings: object) -> Platform:
    return Platform(name="p", settings={"import_from": "awaiting_payment", **settings})


def test_vtex_reserves_only_once_payment_is_confirmed_by_default() -> None:
    reserves = platform(type="vtex").reserves()
    assert [reserves(s) for s in PENDING] == [False, False]
    assert reserves(OrderStatus.PAYMENT_CONFIRMED)


def test_other_platforms_reserve_at_import_by_default() -> None:
    reserves = platform(type="webhook").reserves()
    assert all(reserves(s) for s in PENDING)


@pytest.mark.parametrize(("kind", "choice"), [("vtex", True), ("webhook", False)])
def test_the_seller_can_choose_per_platform(kind: str, choice: bool) -> None:
    reserves = platform(type=kind, reserve_while_pending=choice).reserves()
    assert [reserves(s) for s in PENDING] == [choice, choice]
    assert reserves(OrderStatus.PAYMENT_CONFIRMED)


def test_import_from_payment_confirmed_skips_earlier_statuses() -> None:
    late = platform(type="webhook", import_from="payment_confirmed")
    assert not late.imports(OrderStatus.AWAITING_PAYMENT)
    assert not late.imports(OrderStatus.PAYMENT_IN_ANALYSIS)
    assert late.imports(OrderStatus.PAYMENT_CONFIRMED)
    assert platform(type="webhook").imports(OrderStatus.AWAITING_PAYMENT)


def test_orders_are_held_without_a_mapped_carrier() -> None:
    p = platform(type="webhook", carriers={"PAC": "pac"})
    assert p.hold_reason("PAC") is None
    assert p.hold_reason("Jadlog") == "carrier 'Jadlog' has no mapping"
    assert p.hold_reason(None) == "the order has no carrier"


SETTINGS = {"type": "vtex", "import_from": "awaiting_payment", "warehouses": {"main": "1_1"}}
SECRET = "k3y-" + "x" * 24


def mapper() -> Mapper:
    transcoder = FlatJSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return Mapper(transcoder)


def stored_and_loaded(p: Platform) -> tuple[list[StoredEvent], Platform]:
    m = mapper()
    stored = [m.to_stored_event(e) for e in p.collect_events()]
    loaded = None
    for record in stored:
        loaded = m.to_domain_event(record).mutate(loaded)
    assert loaded is not None
    return stored, loaded


def test_events_record_which_credentials_changed_and_the_revision_follows() -> None:
    p = Platform.configured("vtex", SETTINGS, ["app_key", "app_token"])
    assert (sorted(p.credential_names), p.credentials_revision) == (["app_key", "app_token"], 1)
    p.reconfigure({**SETTINGS, "rate_limit": 10.0})  # settings only
    assert p.credentials_revision == 1
    p.reconfigure(SETTINGS, ["app_token"], [])  # rotated
    assert p.credentials_revision == 2
    p.reconfigure(SETTINGS, ["hook_secret"], ["app_key"])
    assert (sorted(p.credential_names), p.credentials_revision) == (["app_token", "hook_secret"], 3)
    version = p.version
    p.reconfigure(SETTINGS)  # nothing changed: nothing recorded
    assert p.version == version
    stored, loaded = stored_and_loaded(p)
    assert (loaded.credential_names, loaded.credentials_revision) == (p.credential_names, 3)
    assert loaded.public()["credentials"] == ["app_token", "hook_secret"]
    assert all(b"credentials_set" in s.state for s in stored)


def legacy_event(name: str, settings: dict[str, Any], version: int = 1) -> StoredEvent:
    """A Platform event as the ledger wrote it before credentials left the event log."""
    m = mapper()
    state: dict[str, Any] = {"timestamp": datetime.now(UTC), "settings": settings}
    if version == 1:
        topic = get_topic(Platform.Configured)
        state.update(originator_topic=get_topic(Platform), name=name)
    else:
        topic = get_topic(Platform.Reconfigured)
    return StoredEvent(ids.platform_id(name), version, topic, m.transcoder.encode(state))


def test_old_events_are_read_without_their_values_in_the_settings_or_any_repr() -> None:
    m = mapper()
    old = {**SETTINGS, "credentials": {"app_key": "vtexappkey-a-b", "app_token": SECRET}}
    records = [
        legacy_event("vtex", old),
        legacy_event("vtex", {**old, "rate_limit": 5.0}, version=2),  # same credentials
    ]
    events = [m.to_domain_event(r) for r in records]
    p = None
    for event in events:
        p = event.mutate(p)
    assert p is not None
    assert "credentials" not in p.settings
    assert sorted(p.credential_names) == ["app_key", "app_token"]
    assert p.credentials_revision == 1  # the second event changed no credential
    assert dict(p.legacy_credentials or {}) == old["credentials"]  # kept for the vault
    for shown in (repr(p), str(p.public()), *map(repr, events), repr(p.legacy_credentials)):
        assert SECRET not in shown
    assert p.public()["credentials"] == ["app_key", "app_token"]


def test_old_events_changing_credentials_move_the_revision_and_a_new_change_supersedes_them() -> (
    None
):
    m = mapper()
    records = [
        legacy_event("vtex", {**SETTINGS, "credentials": {"app_key": "a"}}),
        legacy_event("vtex", {**SETTINGS, "credentials": {"app_key": "b"}}, version=2),
    ]
    p = None
    for record in records:
        p = m.to_domain_event(record).mutate(p)
    assert p is not None
    assert p.credentials_revision == 2
    p.reconfigure(SETTINGS, ["app_token"], [])
    assert p.legacy_credentials is None
    assert sorted(p.credential_names) == ["app_key", "app_token"]
    assert p.credentials_revision == 3
