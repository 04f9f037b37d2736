"""The ledger's transcoder writes exactly what eventsourcing's JSONTranscoder writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import uuid4

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex

from ledger.transcoding import FlatJSONTranscoder

TRICKY = ["", "plain", 'quote " back \\ slash', "tab\tnew\nline", "ção ü 日本 🚚", "\u2028\x7f"]


def transcoders() -> tuple[JSONTranscoder, JSONTranscoder]:
    library, ours = JSONTranscoder(), FlatJSONTranscoder()
    for transcoder in (library, ours):
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            transcoder.register(transcoding)
    return library, ours


@pytest.mark.parametrize("text", TRICKY)
def test_flat_states_encode_byte_for_byte_like_the_library(text: str) -> None:
    library, ours = transcoders()
    state = {
        "timestamp": datetime.now(UTC),
        "occurred_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-3))),
        text or "k": text,
        "change": Decimal("-123456789012.123456"),
        "zero": Decimal(0),
        "exponent": Decimal("1E+3"),
        "none": None,
        "version": 12,
        "negative": -7,
        "flag": True,
        "off": False,
        "id": uuid4(),
    }
    assert ours.encode(state) == library.encode(state)
    assert library.decode(ours.encode(state)) == state
    assert ours.decode(ours.encode(state)) == state


@pytest.mark.parametrize(
    "state",
    [
        {"items": [{"sku": "A", "quantity": Decimal("1.5")}], "at": datetime.now(UTC)},
        {"nested": {"a": Decimal(1), "b": 2}},
        {"looks_wrapped": {"_type_": "unknown", "_data_": "x"}},
        {"two_keys": {"_type_": "x", "other": 1}},
        {"n": 0.5, "id": uuid4(), "s": "_type_"},
    ],
)
def test_decoding_agrees_with_the_library_whatever_the_shape(state: dict[str, object]) -> None:
    library, ours = transcoders()
    try:
        expected = library.decode(library.encode(state))
    except TypeError:
        with pytest.raises(TypeError):
            ours.decode(library.encode(state))
        return
    assert ours.decode(library.encode(state)) == expected


def test_anything_else_goes_to_the_library_encoder() -> None:
    library, ours = transcoders()
    state = {"items": [{"sku": "A", "quantity": Decimal("1.5")}], "ratio": 0.5, "n": {"a": 1}}
    assert ours.encode(state) == library.encode(state)
    assert ours.encode([1, "a"]) == library.encode([1, "a"])
