"""What a seller may configure for a platform (``PUT /platforms/{name}``), checked once, here.

Every entry point (HTTP, tests, scripts) goes through ``parse_platform``, and nothing is
recorded unless all of it holds, because a setting is read long after the PUT that stored it:
by the publisher view, the dispatcher and the robots, for every platform in one loop. A value
they cannot use must be refused at the door, with a 422 naming the field, never discovered
there:

- ``base_url`` is an absolute ``https`` URL with a host name or IP address, in printable ASCII.
  Plain ``http`` is allowed only to a loopback host (``localhost``, ``127.0.0.0/8``, ``::1``),
  or when the seller says ``allow_insecure_http``: credentials would otherwise cross the
  network in clear. No user name or password in it (those are credentials, which belong in
  ``credentials``, encrypted), and no fragment (a request never carries one).
- Credential names are codes; credential values are printable ASCII without white space: they
  travel in HTTP headers, where a line feed splits the header (and leaked into error messages)
  and anything non-ASCII cannot be sent at all. A value is never repeated in an error.
- Mappings hold codes (``ledger.codes``): a NUL character, for one, cannot be stored by
  PostgreSQL's views, and one such value once stopped publishing for every platform. Carrier
  names are the platform's text, one line. Warehouses and SKUs map one to one: a platform's
  stock is an absolute number per id, so two ledger ids sent to one platform id would overwrite
  each other instead of adding up.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from ledger.codes import check_code, check_text
from ledger.errors import InvalidInput

MAX_URL_LENGTH = 500
MAX_CREDENTIAL_LENGTH = 4096
# Printable ASCII without the space: what an HTTP header value and an HMAC key can carry as is.
_CREDENTIAL_VALUE = re.compile(r"[\x21-\x7e]+")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")
# A DNS name: letters, digits, hyphens and (as container names have them) underscores.
_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")

TYPES = ("vtex", "webhook")
IMPORT_FROM = ("awaiting_payment", "payment_confirmed")
# name -> (least, most, whether the least is allowed) of the numeric settings; all optional
# (None: the default applies).
NUMBERS = {
    "rate_limit": (0.0, 10_000.0, False),  # requests per second
    "feed_interval_seconds": (1.0, 86_400.0, True),
    "payment_check_seconds": (1.0, 86_400.0, True),
    "drift_check_seconds": (1.0, 604_800.0, True),
}
FIELDS = frozenset(
    {
        "type",
        "base_url",
        "allow_insecure_http",
        "credentials",
        "import_from",
        "reserve_while_pending",
        "warehouses",
        "carriers",
        "skus",
        *NUMBERS,
    }
)


@dataclass(frozen=True)
class PlatformRequest:
    """A checked PUT: the settings (every field, defaults filled in, no credentials) and the
    credential changes it asks for (a name with a value sets it, with None deletes it)."""

    settings: dict[str, Any]
    credentials: dict[str, str | None]


def parse_platform(body: object) -> PlatformRequest:
    if not isinstance(body, dict):
        raise InvalidInput("the platform's settings must be a JSON object")
    unknown = [k for k in body if k not in FIELDS]
    if unknown:
        field = _name_of(unknown[0])
        raise InvalidInput(f"{field} is not a platform setting", field=field)
    kind = body.get("type")
    if kind not in TYPES:
        raise InvalidInput(f"type must be one of {', '.join(TYPES)}", field="type")
    import_from = body.get("import_from", "awaiting_payment")
    if import_from not in IMPORT_FROM:
        raise InvalidInput(
            f"import_from must be one of {', '.join(IMPORT_FROM)}", field="import_from"
        )
    insecure = _flag(body, "allow_insecure_http", default=False)
    settings: dict[str, Any] = {
        "type": kind,
        "base_url": check_base_url(body.get("base_url"), allow_insecure_http=bool(insecure)),
        "allow_insecure_http": insecure,
        "import_from": import_from,
        "reserve_while_pending": _flag(body, "reserve_while_pending", default=None),
        "warehouses": _codes(body, "warehouses", one_to_one=True),
        "carriers": _carriers(body),
        "skus": _codes(body, "skus", one_to_one=True),
    }
    for name, bounds in NUMBERS.items():
        settings[name] = _number(body.get(name), name, *bounds)
    return PlatformRequest(settings, _credentials(body))


def check_base_url(value: object, *, allow_insecure_http: bool = False) -> str | None:
    if value is None:
        return None
    field = "base_url"
    if not isinstance(value, str) or not value:
        raise InvalidInput("base_url must be a URL (a non-empty string) or null", field=field)
    if len(value) > MAX_URL_LENGTH:
        raise InvalidInput(f"base_url is longer than {MAX_URL_LENGTH} characters", field=field)
    if not _PRINTABLE_ASCII.fullmatch(value):
        raise InvalidInput(
            "base_url must be printable ASCII without spaces or control characters "
            "(percent-encode anything else)",
            field=field,
        )
    try:
        parts = urlsplit(value)
        host = parts.hostname
        port = parts.port  # reading it checks it: a port that is not a number raises
    except ValueError as error:
        raise InvalidInput(f"base_url is not a valid URL: {error}", field=field) from None
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise InvalidInput(
            "base_url must be an absolute URL such as https://host/path", field=field
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            "base_url must not hold a user name or password: put those in credentials",
            field=field,
        )
    if parts.fragment or value.endswith("#"):
        raise InvalidInput("base_url must not have a #fragment", field=field)
    if not host or not _valid_host(host, bracketed=parts.netloc.rpartition("@")[2][:1] == "["):
        raise InvalidInput("base_url must name a valid host", field=field)
    if port == 0:
        raise InvalidInput("base_url's port must be between 1 and 65535", field=field)
    if parts.scheme == "http" and not (allow_insecure_http or is_loopback(host)):
        raise InvalidInput(
            "base_url must use https (plain http only to localhost, or with "
            "allow_insecure_http: true)",
            field=field,
        )
    return value


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_credential_value(value: object, field: str) -> str:
    """A credential's value, checked without ever putting it into the message."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{field} must be a non-empty string or null", field=field)
    if len(value) > MAX_CREDENTIAL_LENGTH:
        raise InvalidInput(
            f"{field} is longer than {MAX_CREDENTIAL_LENGTH} characters", field=field
        )
    if not _CREDENTIAL_VALUE.fullmatch(value):
        raise InvalidInput(
            f"{field} must be printable ASCII without spaces or line breaks (the value is "
            "not shown)",
            field=field,
        )
    return value


def _valid_host(host: str, *, bracketed: bool) -> bool:
    if bracketed:  # [IPv6]
        try:
            return ipaddress.ip_address(host).version == 6
        except ValueError:
            return False
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


def _credentials(body: dict[str, Any]) -> dict[str, str | None]:
    if "credentials" not in body:
        return {}
    value = body["credentials"]
    if not isinstance(value, dict):
        raise InvalidInput(
            "credentials must be an object of name: value (null deletes)", field="credentials"
        )
    checked: dict[str, str | None] = {}
    for name, secret in value.items():
        _checked(check_code, name, "credentials")
        field = f"credentials.{name}"
        checked[name] = None if secret is None else check_credential_value(secret, field)
    return checked


def _codes(body: dict[str, Any], field: str, *, one_to_one: bool) -> dict[str, str]:
    mapping = _mapping(body, field)
    for key, target in mapping.items():
        _checked(check_code, key, field)
        check_code(target, f"{field}.{key}")
    if one_to_one:
        seen: dict[str, str] = {}
        for key, target in mapping.items():
            if target in seen:
                raise InvalidInput(
                    f"{field}: {seen[target]!r} and {key!r} map to the same platform id "
                    f"{target!r}; each must have its own",
                    field=field,
                )
            seen[target] = key
    return dict(mapping)


def _carriers(body: dict[str, Any]) -> dict[str, str]:
    mapping = _mapping(body, "carriers")
    for name, carrier in mapping.items():
        if _checked(check_text, name, "carriers") is None:
            raise InvalidInput("carriers: a carrier name must not be empty", field="carriers")
        check_code(carrier, f"carriers.{name}")
    return dict(mapping)


def _mapping(body: dict[str, Any], field: str) -> dict[Any, Any]:
    if field not in body:
        return {}
    value = body[field]
    if not isinstance(value, dict):  # null too: the document says an object
        raise InvalidInput(f"{field} must be an object", field=field)
    return value


def _flag(body: dict[str, Any], field: str, *, default: bool | None) -> bool | None:
    value = body.get(field, default)
    if value is None and default is None:
        return None
    if not isinstance(value, bool):
        raise InvalidInput(f"{field} must be true or false", field=field)
    return value


def _number(
    value: object, field: str, least: float, most: float, least_allowed: bool
) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise InvalidInput(f"{field} must be a number", field=field)
    floor = f"at least {least:g}" if least_allowed else f"more than {least:g}"
    refusal = InvalidInput(f"{field} must be {floor} and at most {most:g}", field=field)
    try:
        number = float(value)  # an integer of 400 digits overflows: refused like any too large
    except (OverflowError, ValueError):
        raise refusal from None
    low_enough = number >= least if least_allowed else number > least
    if not math.isfinite(number) or not low_enough or number > most:
        raise refusal
    return number


def _checked(check: Callable[[object, str], str | None], key: object, field: str) -> Any:
    """Check a mapping's key; the error names the mapping, and the key only in escaped form
    (it may hold the very control characters that are refused)."""
    try:
        return check(key, f"{field}: the key {_shown(key)}")
    except InvalidInput as error:
        raise InvalidInput(error.detail, field=field) from None


def _name_of(key: object) -> str:
    if isinstance(key, str) and _PRINTABLE_ASCII.fullmatch(key) and len(key) <= 40:
        return key
    return _shown(key)


def _shown(key: object) -> str:
    shown = repr(key)
    return shown if len(shown) <= 40 else shown[:37] + "..."
