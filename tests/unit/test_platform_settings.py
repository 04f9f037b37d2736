"""The rules of a platform's settings (ledger/platform_settings.py): what PUT /platforms takes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ledger.errors import InvalidInput
from ledger.platform_settings import parse_platform

SECRET = "Zq8-very-secret-value-0123456789"


def body(**settings: Any) -> dict[str, Any]:
    return {"type": "vtex", **settings}


def refused(settings: dict[str, Any]) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_platform(settings)
    return caught.value


INVALID: list[tuple[str, dict[str, Any], str]] = [
    # (what, body, the field the error names)
    ("a body that is not an object", ["vtex"], None),  # type: ignore[list-item]
    ("an unknown setting", body(base_urls="https://x.example"), "base_urls"),
    ("no type", {"base_url": "https://x.example"}, "type"),
    ("an unknown type", body(type="shopify"), "type"),
    ("an unknown import policy", body(import_from="never"), "import_from"),
    ("a base_url that does not parse", body(base_url="http://[::1"), "base_url"),
    ("a base_url without a scheme", body(base_url="vtex.example/api"), "base_url"),
    ("a relative base_url", body(base_url="/api"), "base_url"),
    ("a base_url of another scheme", body(base_url="ftp://x.example"), "base_url"),
    ("a base_url without a host", body(base_url="https://"), "base_url"),
    ("a base_url with an empty host", body(base_url="https://:443/x"), "base_url"),
    ("plain http to another host", body(base_url="http://x.example"), "base_url"),
    ("plain http to a private address", body(base_url="http://10.0.0.5:8080"), "base_url"),
    ("credentials in the base_url", body(base_url="https://me:pw@x.example"), "base_url"),
    ("a user name in the base_url", body(base_url="https://me@x.example"), "base_url"),
    ("a fragment", body(base_url="https://x.example/api#top"), "base_url"),
    ("an empty fragment", body(base_url="https://x.example/api#"), "base_url"),
    ("a NUL in the base_url", body(base_url="https://x.example/\x00"), "base_url"),
    ("a line feed in the base_url", body(base_url="https://x.example/\nHost: evil"), "base_url"),
    ("a space in the base_url", body(base_url="https://x.example/a b"), "base_url"),
    ("a space in the host", body(base_url="https://x .example"), "base_url"),
    ("a non-ASCII host", body(base_url="https://exämple.com"), "base_url"),
    ("a host with a slash-like character", body(base_url="https://x\\y.example"), "base_url"),
    ("a port that is not a number", body(base_url="https://x.example:abc/"), "base_url"),
    ("a port out of range", body(base_url="https://x.example:99999/"), "base_url"),
    ("port zero", body(base_url="https://x.example:0/"), "base_url"),
    ("a bad IPv6 literal", body(base_url="https://[::g]/"), "base_url"),
    ("a base_url that is not a string", body(base_url=42), "base_url"),
    ("an empty base_url", body(base_url=""), "base_url"),
    ("a very long base_url", body(base_url="https://x.example/" + "a" * 500), "base_url"),
    ("allow_insecure_http not a boolean", body(allow_insecure_http="yes"), "allow_insecure_http"),
    ("credentials not an object", body(credentials=["app_key"]), "credentials"),
    ("a credential name with a NUL", body(credentials={"app\x00key": "x"}), "credentials"),
    ("a credential name '..'", body(credentials={"..": "x"}), "credentials"),
    (
        "a credential with a line feed",
        body(credentials={"app_token": "a\nb"}),
        "credentials.app_token",
    ),
    ("a credential with a space", body(credentials={"app_token": "a b"}), "credentials.app_token"),
    ("a credential with a tab", body(credentials={"app_token": "a\tb"}), "credentials.app_token"),
    ("a non-ASCII credential", body(credentials={"app_key": "kéy"}), "credentials.app_key"),
    ("an empty credential", body(credentials={"app_key": ""}), "credentials.app_key"),
    ("a credential that is a number", body(credentials={"app_key": 5}), "credentials.app_key"),
    ("a very long credential", body(credentials={"app_key": "k" * 4097}), "credentials.app_key"),
    ("warehouses not an object", body(warehouses=["main"]), "warehouses"),
    ("warehouses null", body(warehouses=None), "warehouses"),
    ("skus null", body(skus=None), "skus"),
    ("carriers null", body(carriers=None), "carriers"),
    ("credentials null", body(credentials=None), "credentials"),
    ("a NUL in a ledger warehouse", body(warehouses={"ma\x00in": "1_1"}), "warehouses"),
    ("a NUL in a platform warehouse", body(warehouses={"main": "1\x001"}), "warehouses.main"),
    ("a platform warehouse '..'", body(warehouses={"main": ".."}), "warehouses.main"),
    ("a ledger warehouse '.'", body(warehouses={".": "1_1"}), "warehouses"),
    ("a platform warehouse not a string", body(warehouses={"main": 1}), "warehouses.main"),
    ("two warehouses to one id", body(warehouses={"a": "1_1", "b": "1_1"}), "warehouses"),
    ("a NUL in a SKU", body(skus={"SKU\x00": "1"}), "skus"),
    ("a platform SKU '..'", body(skus={"SKU-1": ".."}), "skus.SKU-1"),
    ("a platform SKU with a line feed", body(skus={"SKU-1": "1\n2"}), "skus.SKU-1"),
    ("two SKUs to one id", body(skus={"A": "9", "B": "9"}), "skus"),
    ("a carrier name on two lines", body(carriers={"PAC\nSEDEX": "pac"}), "carriers"),
    ("a carrier name with a NUL", body(carriers={"PAC\x00": "pac"}), "carriers"),
    ("an empty carrier name", body(carriers={"": "pac"}), "carriers"),
    ("a ledger carrier with a NUL", body(carriers={"PAC": "p\x00c"}), "carriers.PAC"),
    ("a ledger carrier '..'", body(carriers={"PAC": ".."}), "carriers.PAC"),
    ("a rate of zero", body(rate_limit=0), "rate_limit"),
    ("a negative rate", body(rate_limit=-1), "rate_limit"),
    ("a rate beyond the most", body(rate_limit=10_001), "rate_limit"),
    ("a rate as a string", body(rate_limit="50"), "rate_limit"),
    ("a rate as a boolean", body(rate_limit=True), "rate_limit"),
    ("a feed interval under a second", body(feed_interval_seconds=0.5), "feed_interval_seconds"),
    ("a drift check beyond a week", body(drift_check_seconds=604_801), "drift_check_seconds"),
    ("reserve_while_pending not a boolean", body(reserve_while_pending=1), "reserve_while_pending"),
]


@pytest.mark.parametrize(("what", "settings", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_settings_are_refused_naming_the_field(
    what: str, settings: dict[str, Any], field: str | None
) -> None:
    error = refused(settings)
    assert error.context.get("field") == field, error.detail
    assert error.detail


@pytest.mark.parametrize(
    "value", [SECRET + "\n", SECRET + " x", "é" + SECRET, SECRET + "\x00", "x" * 5000 + SECRET]
)
def test_a_refused_credential_is_never_repeated_in_the_error(value: str) -> None:
    error = refused(body(credentials={"app_token": value}))
    assert SECRET not in error.detail
    assert SECRET not in repr(error.context)


def test_a_refused_mapping_key_is_shown_escaped_and_short() -> None:
    error = refused(body(warehouses={"ma\x00in" + "x" * 100: "1_1"}))
    assert "\x00" not in error.detail
    assert "\\x00" in error.detail
    assert len(error.detail) < 200


VALID_URLS = [
    "https://acme.vtexcommercestable.com.br",
    "https://acme.vtexcommercestable.com.br/",
    "https://x.example:8443/api/v1?account=acme",
    "https://my_service.internal/hook",
    "https://192.0.2.10/",
    "https://[2001:db8::1]:8443/",
    "http://localhost:8099",
    "http://LOCALHOST/",
    "http://127.0.0.1:8099/",
    "http://127.3.2.1/",
    "http://[::1]:8099/x",
    "https://x.example/a%20b",
]


@pytest.mark.parametrize("url", VALID_URLS)
def test_https_and_loopback_http_urls_are_accepted_and_usable_by_the_http_client(
    url: str,
) -> None:
    assert parse_platform(body(base_url=url)).settings["base_url"] == url
    # Whatever the rules accept, the adapters' HTTP client must take: no looser than httpx.
    with httpx.Client(base_url=url) as client:
        assert client.build_request("GET", "/api/x").url.host


def test_plain_http_elsewhere_needs_the_explicit_setting() -> None:
    settings = parse_platform(
        body(base_url="http://erp-gateway.lan:8080/", allow_insecure_http=True)
    ).settings
    assert settings["base_url"] == "http://erp-gateway.lan:8080/"
    assert settings["allow_insecure_http"] is True


def test_settings_get_every_field_with_defaults_and_no_credentials() -> None:
    request = parse_platform(
        body(
            base_url="https://x.example",
            credentials={"app_key": "k", "app_token": None},
            warehouses={"main": "1_1"},
            carriers={"Correios PAC": "pac"},
            rate_limit=20,
        )
    )
    assert request.credentials == {"app_key": "k", "app_token": None}
    assert "credentials" not in request.settings
    assert request.settings == {
        "type": "vtex",
        "base_url": "https://x.example",
        "allow_insecure_http": False,
        "import_from": "awaiting_payment",
        "reserve_while_pending": None,
        "warehouses": {"main": "1_1"},
        "carriers": {"Correios PAC": "pac"},
        "skus": {},
        "rate_limit": 20.0,
        "feed_interval_seconds": None,
        "payment_check_seconds": None,
        "drift_check_seconds": None,
    }


def test_no_credentials_means_no_change_and_null_means_delete() -> None:
    assert parse_platform(body()).credentials == {}
    assert parse_platform(body(credentials={})).credentials == {}
    assert parse_platform(body(credentials={"hook_secret": None})).credentials == {
        "hook_secret": None
    }
