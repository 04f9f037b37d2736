"""The VTEX client against the VTEX emulator over real HTTP: what arrives is what was meant."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.delivery_errors import DeliveryError
from adapters.vtex import VtexClient
from adapters.vtex_emulator import VtexEmulator

ODD_IDS = [
    "a/b",
    "what?",
    "x#1",
    "100%",
    "two words",
    "a..b",
    "../x",
    "camisa-açaí-€",
    "%2F",
]


@pytest.fixture
def emulator() -> Iterator[VtexEmulator]:
    with VtexEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(emulator: VtexEmulator) -> Iterator[VtexClient]:
    with VtexClient(emulator.url, emulator.app_key, emulator.app_token, timeout=5) as client:
        yield client


@pytest.mark.parametrize("odd", ODD_IDS)
def test_each_id_arrives_as_one_segment_and_decodes_back_to_itself(
    emulator: VtexEmulator, client: VtexClient, odd: str
) -> None:
    emulator.add_order(odd, [{"sku": odd, "quantity": 1, "price": 100}], "handling")

    client.set_quantity(odd, odd, 3)
    assert client.read_stock(odd) == {odd: 3}
    assert client.get_order(odd)["orderId"] == odd
    invoice = {
        "type": "Output",
        "issuanceDate": "2024-05-01T12:00:00+00:00",
        "invoiceNumber": odd,
        "invoiceValue": "100",
        "items": [{"id": odd, "price": 100, "quantity": 1}],
    }
    client.send_invoice(odd, invoice)
    tracking = {
        "trackingNumber": "BR1",
        "trackingUrl": None,
        "courier": None,
        "dispatchedDate": None,
    }
    client.update_tracking(odd, odd, tracking)

    assert emulator.stock(odd, odd) == 3
    assert emulator.invoices(odd) == [invoice]
    assert emulator.tracking_updates(odd) == [tracking | {"invoiceNumber": odd}]
    requests = emulator.requests()
    assert [r["status"] for r in requests] == [204, 200, 200, 200, 200]
    expected = [
        {"skuId": odd, "warehouseId": odd},
        {"skuId": odd},
        {"orderId": odd},
        {"orderId": odd},
        {"orderId": odd, "invoiceNumber": odd},
    ]
    assert [r["params"] for r in requests] == expected
    # Raw, as it arrived: every id one segment, nothing for a URL to resolve or cut.
    for request in requests:
        segments = request["path"].split("/")
        assert not {".", ".."} & set(segments)
        assert request["path"].isascii()


@pytest.mark.parametrize("bad", [".", "..", ""])
def test_an_id_that_cannot_be_one_segment_never_leaves(
    emulator: VtexEmulator, client: VtexClient, bad: str
) -> None:
    with pytest.raises(DeliveryError) as caught:
        client.set_quantity(bad, "1_1", 3)
    assert not caught.value.retryable
    with pytest.raises(DeliveryError):
        client.get_order(bad)
    assert emulator.requests() == []


def test_the_stock_update_keeps_the_lead_time_the_seller_set(
    emulator: VtexEmulator, client: VtexClient
) -> None:
    emulator.set_stock("123", "1_1", 10, lead_time="05.00:00:00")

    client.set_quantity("123", "1_1", 4)

    assert emulator.stock("123", "1_1") == 4
    assert emulator.lead_time("123", "1_1") == "05.00:00:00"
    [update] = emulator.stock_updates()
    assert update["method"] == "PATCH"


def test_a_colliding_update_423_is_retryable() -> None:
    with (
        VtexEmulator(lock_window_ms=60_000) as emulator,
        VtexClient(emulator.url, emulator.app_key, emulator.app_token) as client,
    ):
        client.set_quantity("1", "1_1", 5)
        with pytest.raises(DeliveryError) as caught:
            client.set_quantity("1", "1_1", 6)
        assert (caught.value.status, caught.value.retryable) == (423, True)
        assert emulator.stock("1", "1_1") == 5


@pytest.mark.parametrize("status", [503, 500, 429, 408])
def test_an_outage_status_is_retryable(
    emulator: VtexEmulator, client: VtexClient, status: int
) -> None:
    emulator.fault(status, count=1, retry_after=3)
    with pytest.raises(DeliveryError) as caught:
        client.set_quantity("1", "1_1", 5)
    assert (caught.value.status, caught.value.retryable, caught.value.retry_after) == (
        status,
        True,
        3,
    )
    client.set_quantity("1", "1_1", 5)
    assert emulator.stock("1", "1_1") == 5
