"""Barcodes: GTINs (EAN-8, UPC-A/GTIN-12, EAN-13, GTIN-14) checked and compared as GTIN-14,
and any other code kept as an internal code under the ledger's code rules."""

from __future__ import annotations

from ledger.codes import check_code
from ledger.errors import InvalidInput

GTIN_LENGTHS = frozenset({8, 12, 13, 14})


class InvalidBarcode(InvalidInput):
    code = "invalid_barcode"


def check_digit(body: str) -> int:
    """The GS1 check digit of ``body`` (every digit but the last): weights 3 and 1 from the
    right."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def normalize_barcode(value: object, field: str = "barcode") -> str:
    """The key a barcode is stored and looked up by.

    All-digit codes of 8, 12, 13 or 14 digits are GTINs: their check digit must hold, and they
    are padded to 14 digits, so that a GTIN-12 and the same code with a leading zero (its
    EAN-13 form) are one barcode. Anything else is an internal code, checked like a SKU."""
    if (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and len(value) in GTIN_LENGTHS
    ):
        if check_digit(value[:-1]) != int(value[-1]):
            raise InvalidBarcode(
                f"{field} {value!r} is a GTIN-{len(value)} whose check digit is wrong "
                f"(expected {check_digit(value[:-1])})",
                field=field,
            )
        return value.zfill(14)
    try:
        return check_code(value, field)
    except InvalidInput as error:
        raise InvalidBarcode(error.detail, field=field) from None


def display_barcode(key: str) -> str:
    """A GTIN-14 key without the padding zeros of a shorter GTIN (as printed on the box)."""
    if len(key) == 14 and key.isdigit():
        for length in (8, 12, 13):
            if key[: 14 - length] == "0" * (14 - length):
                return key[14 - length :]
    return key
