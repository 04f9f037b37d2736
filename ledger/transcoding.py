"""Event state to JSON, byte for byte as eventsourcing's ``JSONTranscoder`` writes it, faster.

Every event of the ledger is a flat mapping of strings, numbers, decimals, datetimes and ids.
The library's encoder calls back into Python for each decimal and datetime and then encodes
the wrapper it gets back; writing those few known shapes directly takes a third less time per
event, which a 50,000-row batch (150,000 events) feels. Anything else (a list, a nested mapping,
an unregistered type) goes to the library's encoder, and ``tests/unit/test_transcoding.py``
holds both outputs identical, so what is stored does not depend on which path wrote it.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any
from uuid import UUID

from eventsourcing.persistence import JSONTranscoder


class FlatJSONTranscoder(JSONTranscoder):
    def decode(self, data: bytes) -> Any:
        # The inverse shortcut: parse without a hook (the library calls back into Python for
        # every object) and unwrap the three known shapes at the top level. Anything else
        # (lists, other nested objects, other types) is decoded by the library from scratch.
        obj = _loads(data.decode("utf8"))
        if type(obj) is not dict:
            return super().decode(data)
        for key, value in obj.items():
            kind = type(value)
            if kind is dict:
                decode = _UNWRAP.get(value.get("_type_")) if len(value) == 2 else None
                if decode is None or "_data_" not in value:
                    return super().decode(data)
                obj[key] = decode(value["_data_"])
            elif kind is list:
                return super().decode(data)
        return obj

    def encode(self, obj: Any) -> bytes:
        if type(obj) is dict:
            parts = []
            for key, value in obj.items():
                encoded = _encode_value(value)
                if encoded is None or type(key) is not str:
                    return super().encode(obj)
                parts.append(f"{encode_basestring(key)}:{encoded}")
            return ("{" + ",".join(parts) + "}").encode("utf8")
        return super().encode(obj)


_loads = json.loads
_UNWRAP = {"decimal_str": Decimal, "datetime_iso": datetime.fromisoformat, "uuid_hex": UUID}


def _encode_value(value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if value is None:
        return "null"
    if kind is Decimal:
        return '{"_type_":"decimal_str","_data_":' + encode_basestring(str(value)) + "}"
    if kind is datetime:
        return '{"_type_":"datetime_iso","_data_":' + encode_basestring(value.isoformat()) + "}"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is UUID:
        return '{"_type_":"uuid_hex","_data_":"' + value.hex + '"}'
    return None
