"""Exact quantities: ``Decimal`` end to end, with the bounds the ledger accepts."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from ledger.errors import InvalidInput

MAX_DECIMAL_PLACES = 6
# Twelve integer digits: far beyond any real stock, small enough to stay exact everywhere.
MAX_ABS = Decimal("999999999999.999999")


def parse_quantity(value: object, field: str = "quantity") -> Decimal:
    """Turn a JSON number or decimal string into a bounded, exact Decimal, or refuse it."""
    if isinstance(value, bool) or value is None:
        raise InvalidInput(f"{field} must be a decimal number", field=field)
    if isinstance(value, float):
        # JSON is parsed with parse_float=Decimal, so a float here came from Python code.
        value = repr(value)
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, (str, Decimal)):
        raise InvalidInput(f"{field} must be a decimal number", field=field)
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 40:
            raise InvalidInput(f"{field} must be a decimal number", field=field)
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise InvalidInput(
                f"{field} must be a decimal number, got {text!r}", field=field
            ) from None
    if not value.is_finite():
        raise InvalidInput(f"{field} must be a finite number", field=field)
    # Bounds first, on the digits alone: arithmetic on '1e999999999' or on 30 significant
    # digits overflows the decimal context (an exception, not an answer).
    if value and value.adjusted() > MAX_ABS.adjusted():
        raise InvalidInput(f"{field} is too large (at most {MAX_ABS})", field=field)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent < -MAX_DECIMAL_PLACES and _has_more_places(value):
        raise InvalidInput(
            f"{field} has more than {MAX_DECIMAL_PLACES} decimal places", field=field
        )
    if abs(value) > MAX_ABS:
        raise InvalidInput(f"{field} is too large (at most {MAX_ABS})", field=field)
    return normalize(value)


def _has_more_places(value: Decimal) -> bool:
    """Whether digits beyond the sixth decimal place are non-zero ('1.5000000' is fine)."""
    digits = value.as_tuple().digits
    extra = -value.as_tuple().exponent - MAX_DECIMAL_PLACES  # type: ignore[operator]
    return any(digits[-extra:]) if extra > 0 else False


def normalize(value: Decimal) -> Decimal:
    """One canonical form per number, so '10', '10.0' and 1E+1 compare and hash alike."""
    if value == 0:
        return Decimal(0)
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent
    assert isinstance(exponent, int)
    return normalized.quantize(Decimal(1)) if exponent > 0 else normalized


def render(value: Decimal) -> str:
    """Plain notation, never exponent form: '1E+1' would surprise every client."""
    return format(normalize(value), "f")
