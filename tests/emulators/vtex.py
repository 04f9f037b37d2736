"""An in-memory VTEX for tests, demos and benchmarks.

A real HTTP server (``ThreadingHTTPServer``, HTTP/1.1 keep-alive) that keeps inventory and
orders in memory, checks every ``/api`` request against VTEX's official OpenAPI files with
openapi-core, and misbehaves on demand (429, 423, 500, slow answers, dropped connections,
refused connections).

The official files are read at run time from ``$LEDGER_VTEX_SPECS`` (a directory) or, by
default, ``../shared/specs/vtex/`` next to the repository; they must never be copied into
the repository (see PROVENANCE.md there).

Where the prose of VTEX's documentation is stricter than the schema, the emulator checks the
prose by hand (each such check says so where it is made).

Standalone: ``python -m tests.emulators.vtex --port 8099`` adds a JSON control API under
``/_emulator/`` (see ``VtexEmulator._control``); control paths are neither validated nor
faulted, and are not written to the request log.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import json
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.validation.request.exceptions import (
    MissingRequestBody,
    ParametersError,
    RequestBodyValidationError,
    SecurityValidationError,
)
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPECS_ENV = "LEDGER_VTEX_SPECS"
# The repository lives at <work>/main and the specs at <work>/shared/specs/vtex.
DEFAULT_SPECS_DIR = Path(__file__).resolve().parents[3] / "shared" / "specs" / "vtex"
SPEC_FILES = {"logistics": "logistics-api.json", "orders": "orders-api.json"}

HOST = "127.0.0.1"
APP_KEY_HEADER = "X-VTEX-API-AppKey"
APP_TOKEN_HEADER = "X-VTEX-API-AppToken"
# PROVENANCE: "GET /api/orders/feed?maxlot=N (N <= 10)"; the schema types maxlot as a bare string.
FEED_MAX_LOT = 10
# PROVENANCE: hook notifications must be answered with 200 within 5 s.
HOOK_TIMEOUT = 5.0
# The prose of the PUT inventory endpoint: unlimited stock shows as this many units.
UNLIMITED_QUANTITY = 1_000_000
FEED_DOMAIN = "Marketplace"
MAX_BODY = 10 * 1024 * 1024
# Statuses after which VTEX no longer holds a reservation for the order's items.
_RELEASED_STATES = frozenset({"invoiced", "canceled"})
# Statuses in which the payment has not been authorised (so authorizedDate stays null).
_UNAUTHORIZED_STATES = frozenset({"payment-pending", "canceled"})
_FAULT_MODES = frozenset({"429", "429-retry-after", "423", "500", "slow", "drop", "down"})
# Any host matching the specs' server template "https://{accountName}.{environment}.com.br":
# openapi-core insists on a server match before it looks at the path.
_SPEC_HOST = "https://emulator.vtexcommercestable.com.br"
_JSON = "application/json; charset=utf-8"
_STATUS_DESCRIPTIONS = {
    "payment-pending": "Pagamento Pendente",
    "payment-approved": "Pagamento Aprovado",
    "ready-for-handling": "Pronto para o manuseio",
    "handling": "Preparando Entrega",
    "invoiced": "Faturado",
    "canceled": "Cancelado",
}


# --------------------------------------------------------------------------- the specs


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: str  # the path key in the spec, e.g. /api/oms/pvt/orders/{orderId}
    spec: str
    action: str
    regex: re.Pattern[str]


def _route(method: str, pattern: str, spec: str, action: str) -> _Route:
    parts = re.split(r"(\{\w+\})", pattern)
    regex = "".join(
        f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part) for part in parts
    )
    return _Route(method, pattern, spec, action, re.compile(f"^{regex}$"))


_ROUTES = (
    _route(
        "PUT",
        "/api/logistics/pvt/inventory/skus/{skuId}/warehouses/{warehouseId}",
        "logistics",
        "_put_inventory",
    ),
    _route("GET", "/api/logistics/pvt/inventory/skus/{skuId}", "logistics", "_get_inventory"),
    _route("GET", "/api/orders/feed", "orders", "_get_feed"),
    _route("POST", "/api/orders/feed", "orders", "_commit_feed"),
    _route("GET", "/api/oms/pvt/orders/{orderId}", "orders", "_get_order"),
    _route("POST", "/api/oms/pvt/orders/{orderId}/invoice", "orders", "_post_invoice"),
    _route(
        "PATCH",
        "/api/oms/pvt/orders/{orderId}/invoice/{invoiceNumber}",
        "orders",
        "_patch_invoice",
    ),
)


@dataclass
class _OpenAPIRequest:
    """openapi-core's ``Request`` protocol, plus ``path_pattern`` so that it validates against
    the very operation our router chose."""

    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters
    path_pattern: str | None = None


@dataclass
class _OpenAPIResponse:
    status_code: int
    content_type: str
    headers: Headers
    data: bytes | None


@dataclass
class _Spec:
    api: OpenAPI
    operations: dict[tuple[str, str], dict[str, Any]]
    # openapi-core keeps lazy caches whose thread safety is not documented; validation is
    # pure CPU under the GIL anyway, so serialising it costs no throughput.
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Security and parameter verdicts, by the exact values they depend on: a benchmark sends
    # the same headers thousands of times, and checking them was most of the emulator's CPU.
    verdicts: dict[tuple[Any, ...], list[Exception]] = field(default_factory=dict)


_SPECS: dict[str, dict[str, _Spec]] = {}
_SPECS_LOCK = threading.Lock()


def specs_dir() -> Path:
    return Path(os.environ.get(SPECS_ENV) or DEFAULT_SPECS_DIR)


def _load_specs() -> dict[str, _Spec]:
    """Both specs, loaded once per process and directory (about 50 ms plus a warm-up)."""
    directory = specs_dir().resolve()
    key = str(directory)
    with _SPECS_LOCK:
        if key not in _SPECS:
            _SPECS[key] = _read_specs(directory)
        return _SPECS[key]


def _read_specs(directory: Path) -> dict[str, _Spec]:
    specs: dict[str, _Spec] = {}
    for name, filename in SPEC_FILES.items():
        path = directory / filename
        if not path.is_file():
            raise FileNotFoundError(
                f"VTEX spec {path} not found; point {SPECS_ENV} at the directory holding "
                f"{', '.join(SPEC_FILES.values())}"
            )
        data = json.loads(path.read_bytes())
        # Checking the spec itself takes ~0.8 s for both files; PROVENANCE.md records that they
        # pass openapi-spec-validator, so it is skipped here.
        api = OpenAPI.from_dict(data, config=Config(spec_validator_cls=None))
        operations = {
            (method.upper(), pattern): operation
            for pattern, item in data["paths"].items()
            for method, operation in item.items()
            if isinstance(operation, dict)
        }
        specs[name] = _Spec(api, operations)
    for route in _ROUTES:
        if (route.method, route.pattern) not in specs[route.spec].operations:
            raise RuntimeError(
                f"{route.spec} spec in {directory} lacks {route.method} {route.pattern}"
            )
    # The first validations through openapi-core cost ~25 ms of lazy set-up; pay it here.
    warm = Headers({APP_KEY_HEADER: "k", APP_TOKEN_HEADER: "t", "Content-Type": "application/json"})
    for route in _ROUTES:
        _request_errors(specs, route, route.pattern, {}, "maxlot=1", warm, b"{}")
    return specs


def _describe(error: Exception) -> list[dict[str, Any]]:
    """openapi-core's exception as short, JSON-able explanations."""
    base: dict[str, Any] = {"in": getattr(error, "location", None) or "body"}
    name = getattr(error, "name", None)
    if name:
        base["name"] = name
    schema_errors = getattr(error.__cause__, "schema_errors", None)
    if schema_errors:
        return [
            {
                **base,
                "path": "/".join(str(p) for p in getattr(e, "absolute_path", ())),
                "message": getattr(e, "message", str(e)),
            }
            for e in schema_errors
        ]
    return [{**base, "message": str(error)[:300]}]


def _request_errors(
    specs: Mapping[str, _Spec],
    route: _Route,
    path: str,
    path_params: Mapping[str, str],
    query_string: str,
    headers: Headers,
    body: bytes | None,
) -> list[dict[str, Any]]:
    spec = specs[route.spec]
    request = _OpenAPIRequest(
        host_url=_SPEC_HOST,
        path=path,
        method=route.method.lower(),
        body=body or None,
        content_type=(headers.get("Content-Type") or "").lower(),
        parameters=RequestParameters(
            query=ImmutableMultiDict(parse_qsl(query_string, keep_blank_values=True)),
            header=headers,
            path=dict(path_params),
        ),
        path_pattern=route.pattern,
    )
    with spec.lock:
        errors = _validate(spec, request, route, path_params, query_string, headers)
    return [detail for error in errors for detail in _describe(error)]


_VOLATILE_HEADERS = frozenset({"content-length"})


def _validate(
    spec: _Spec,
    request: _OpenAPIRequest,
    route: _Route,
    path_params: Mapping[str, str],
    query_string: str,
    headers: Headers,
) -> list[Exception]:
    """openapi-core's own request validation (security, then parameters, then body, as
    ``iter_errors`` does), with the first two remembered by the values they read."""
    validator = spec.api.request_validator
    try:
        path, operation, _, _, _ = validator._find_path(request)
    except PathError as error:
        return [error]
    key = (
        route.method,
        route.pattern,
        tuple(sorted(path_params.items())),
        query_string,
        tuple(
            sorted((k.lower(), v) for k, v in headers.items() if k.lower() not in _VOLATILE_HEADERS)
        ),
    )
    verdict = spec.verdicts.get(key)
    if verdict is None:
        verdict = []
        try:
            validator._get_security(request.parameters, operation)
        except SecurityValidationError as error:
            verdict = [error]
        else:
            try:
                validator._get_parameters(request.parameters, operation, path)
            except ParametersError as error:
                verdict = list(error.errors)
        if len(spec.verdicts) > 50_000:
            spec.verdicts.clear()
        spec.verdicts[key] = verdict
    if verdict and isinstance(verdict[0], SecurityValidationError):
        return verdict
    errors = list(verdict)
    try:
        validator._get_body(request.body, request.content_type, operation)
    except MissingRequestBody:
        pass
    except RequestBodyValidationError as error:
        errors.append(error)
    return errors


def response_errors(
    method: str,
    path: str,
    status: int,
    body: bytes | None,
    content_type: str = "application/json",
) -> list[dict[str, Any]]:
    """Check an answer against the official response schema of ``method path`` (a concrete
    path, e.g. ``/api/oms/pvt/orders/1-01``); empty when it conforms. For contract tests."""
    specs = _load_specs()
    spec = specs["logistics" if path.startswith("/api/logistics") else "orders"]
    request = _OpenAPIRequest(
        host_url=_SPEC_HOST,
        path=path,
        method=method.lower(),
        body=None,
        content_type="",
        parameters=RequestParameters(),
    )
    response = _OpenAPIResponse(
        status_code=status,
        content_type=content_type,
        headers=Headers({"Content-Type": content_type}),
        data=body,
    )
    with spec.lock:
        errors = list(spec.api.response_validator.iter_errors(request, response))
    return [detail for error in errors for detail in _describe(error)]


# --------------------------------------------------------------------------- replies


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False


def _json_reply(status: int, data: Any, headers: dict[str, str] | None = None) -> _Reply:
    body = json.dumps(data, separators=(",", ":")).encode()
    return _Reply(status, body, _JSON, headers or {})


def _error(
    status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None
) -> _Reply:
    # VTEX's own error envelope, plus the validation details when there are some.
    data: dict[str, Any] = {"error": {"code": code, "message": message, "exception": None}}
    if errors is not None:
        data["errors"] = errors
    return _json_reply(status, data)


def _lock_reply(account: str, sku_id: str, warehouse_id: str) -> _Reply:
    # The spec documents 423 as text/plain with this very message.
    message = f"Unable to acquire lock for key: {account}_item_logistics_{sku_id}_{warehouse_id}."
    return _Reply(423, message.encode(), "text/plain; charset=utf-8")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _account_of(app_key: str) -> str:
    # VTEX app keys read "vtexappkey-<account>-<random>".
    parts = app_key.split("-")
    if len(parts) >= 2 and parts[0] == "vtexappkey" and parts[1]:
        return parts[1]
    return "emulator"


# --------------------------------------------------------------------------- orders


def _build_order(
    order_id: str,
    items: list[dict[str, Any]],
    *,
    state: str,
    carrier: str,
    warehouse_id: str,
    value_cents: int | None,
    account: str,
    now: float,
) -> dict[str, Any]:
    """A VTEX order as GET /api/oms/pvt/orders/{orderId} answers it (the fields of its 200
    schema that an integration reads, with plausible values for the rest)."""
    lines: list[dict[str, Any]] = []
    for item in items:
        sku = str(item["sku"])
        quantity, price = item["quantity"], item["price"]
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise ValueError(f"item {sku}: quantity must be a positive integer, got {quantity!r}")
        if not isinstance(price, int) or isinstance(price, bool) or price < 0:
            raise ValueError(f"item {sku}: price must be integer cents, got {price!r}")
        lines.append({**item, "sku": sku})
    if not lines:
        raise ValueError("an order needs at least one item")
    items_total = sum(line["price"] * line["quantity"] for line in lines)
    value = items_total if value_cents is None else value_cents
    difference = value - items_total
    created = _iso(now)
    estimate = _iso(now + timedelta(days=5).total_seconds())
    sequence = "".join(c for c in order_id if c.isdigit())[-7:] or "1000001"
    transaction_id = uuid.uuid5(uuid.NAMESPACE_URL, f"vtex:{account}:{order_id}").hex.upper()
    address = {
        "addressType": "residential",
        "receiverName": "Maria Silva",
        "addressId": "a1b2c3d4",
        "versionId": None,
        "entityId": None,
        "postalCode": "22250-040",
        "city": "Rio de Janeiro",
        "state": "RJ",
        "country": "BRA",
        "street": "Praia de Botafogo",
        "number": "300",
        "neighborhood": "Botafogo",
        "complement": "3º andar",
        "reference": None,
        "geoCoordinates": [-43.18, -22.94],
    }
    order_items = []
    logistics = []
    for index, line in enumerate(lines):
        sku, quantity, price = line["sku"], line["quantity"], line["price"]
        name = str(line.get("name") or f"Product {sku}")
        ref_id = str(line.get("refId") or f"REF-{sku}")
        selling = int(line.get("sellingPrice", price))
        order_items.append(
            {
                "uniqueId": uuid.uuid5(uuid.NAMESPACE_URL, f"{order_id}/{index}").hex.upper(),
                "id": sku,
                "productId": f"P{sku}",
                "ean": None,
                "lockId": f"00-{order_id}",
                "itemAttachment": {"content": {}, "name": None},
                "attachments": [],
                "quantity": quantity,
                "seller": "1",
                "name": name,
                "refId": ref_id,
                "price": price,
                "listPrice": int(line.get("listPrice", price)),
                "manualPrice": None,
                "priceTags": [],
                "imageUrl": f"https://{account}.vteximg.com.br/arquivos/ids/{sku}-55-55/{sku}.jpg",
                "detailUrl": f"/product-{sku}/p",
                "components": [],
                "bundleItems": [],
                "params": [],
                "offerings": [],
                "attachmentOfferings": [],
                "sellerSku": sku,
                "priceValidUntil": None,
                "commission": 0,
                "tax": 0,
                "preSaleDate": None,
                "additionalInfo": {
                    "brandName": "Acme",
                    "brandId": "2000000",
                    "categoriesIds": "/1/",
                    "productClusterId": "",
                    "commercialConditionId": "1",
                    "offeringInfo": None,
                    "offeringType": None,
                    "offeringTypeId": None,
                },
                "measurementUnit": "un",
                "unitMultiplier": 1,
                "sellingPrice": selling,
                "isGift": False,
                "shippingPrice": None,
                "rewardValue": 0,
                "freightCommission": 0,
                "priceDefinitions": {
                    "sellingPrices": [{"value": selling, "quantity": quantity}],
                    "calculatedSellingPrice": selling,
                    "total": selling * quantity,
                },
                "taxCode": None,
                "parentItemIndex": None,
                "parentAssemblyBinding": None,
                "callCenterOperator": None,
                "serialNumbers": None,
                "assemblies": [],
                "costPrice": price,
            }
        )
        logistics.append(
            {
                "itemIndex": index,
                "selectedSla": "Normal",
                "lockTTL": "10d",
                "price": 0,
                "listPrice": 0,
                "sellingPrice": 0,
                "deliveryWindow": None,
                "deliveryCompany": carrier,
                "shippingEstimate": "5bd",
                "shippingEstimateDate": estimate,
                "slas": [
                    {
                        "id": "Normal",
                        "name": "Normal",
                        "shippingEstimate": "5bd",
                        "deliveryWindow": None,
                        "price": 0,
                        "selectedDeliveryChannel": "delivery",
                        "pickupStoreInfo": {
                            "additionalInfo": None,
                            "address": None,
                            "dockId": None,
                            "friendlyName": None,
                            "isPickupStore": False,
                        },
                        "polygonName": None,
                        "lockTTL": "10d",
                        "pickupPointId": "",
                        "transitTime": "5bd",
                        "pickupDistance": 0,
                    }
                ],
                "shipsTo": ["BRA"],
                "deliveryIds": [
                    {
                        "courierId": "1",
                        "courierName": carrier,
                        "dockId": "1",
                        "quantity": quantity,
                        "warehouseId": warehouse_id,
                        "accountCarrierName": account,
                        "kitItemDetails": [],
                    }
                ],
                "deliveryChannels": [{"id": "delivery", "stockBalance": 0}],
                "selectedDeliveryChannel": "delivery",
                "pickupStoreInfo": {
                    "additionalInfo": None,
                    "address": None,
                    "dockId": None,
                    "friendlyName": None,
                    "isPickupStore": False,
                },
                "addressId": address["addressId"],
                "versionId": None,
                "entityId": None,
                "polygonName": None,
                "pickupPointId": None,
                "transitTime": "5bd",
            }
        )
    return {
        "orderId": order_id,
        "sequence": sequence,
        "marketplaceOrderId": "",
        "marketplaceServicesEndpoint": f"http://oms.vtexinternal.com.br/api/oms?an={account}",
        "sellerOrderId": f"00-{order_id}",
        "origin": "Marketplace",
        "affiliateId": "",
        "salesChannel": "1",
        "merchantName": None,
        "status": state,
        "workflowIsInError": False,
        "statusDescription": _STATUS_DESCRIPTIONS.get(state, state),
        "value": value,
        "creationDate": created,
        "lastChange": created,
        "orderGroup": order_id.rsplit("-", 1)[0],
        "followUpEmail": "7bf3a59bbc56402c810bda9521ba449e@ct.vtex.com.br",
        "lastMessage": None,
        "hostname": account,
        "isCompleted": True,
        "roundingError": 0,
        "orderFormId": uuid.uuid5(uuid.NAMESPACE_URL, f"orderform:{order_id}").hex,
        "allowCancellation": True,
        "allowEdition": False,
        "isCheckedIn": False,
        "authorizedDate": None if state in _UNAUTHORIZED_STATES else created,
        "invoicedDate": None,
        "cancelReason": None,
        "checkedInPickupPointId": None,
        "totals": [
            {"id": "Items", "name": "Total dos Itens", "value": items_total},
            {"id": "Discounts", "name": "Total dos Descontos", "value": min(difference, 0)},
            {"id": "Shipping", "name": "Total do Frete", "value": max(difference, 0)},
            {"id": "Tax", "name": "Total da Taxa", "value": 0},
        ],
        "sellers": [
            {
                "id": "1",
                "name": account,
                "logo": None,
                "fulfillmentEndpoint": f"http://fulfillment.vtexcommerce.com.br/api/fulfillment?an={account}",
            }
        ],
        "clientPreferencesData": {"locale": "pt-BR", "optinNewsLetter": False},
        "cancellationData": None,
        "taxData": None,
        "subscriptionData": None,
        "itemMetadata": {
            "Items": [
                {
                    "Id": item["id"],
                    "Seller": "1",
                    "Name": item["name"],
                    "SkuName": item["name"],
                    "ProductId": item["productId"],
                    "RefId": item["refId"],
                    "Ean": "",
                    "ImageUrl": item["imageUrl"],
                    "DetailUrl": item["detailUrl"],
                    "AssemblyOptions": [],
                }
                for item in order_items
            ]
        },
        "marketplace": {
            "baseURL": f"http://oms.vtexinternal.com.br/api/oms?an={account}",
            "isCertified": None,
            "name": account,
        },
        "storePreferencesData": {
            "countryCode": "BRA",
            "currencyCode": "BRL",
            "currencyFormatInfo": {
                "CurrencyDecimalDigits": 2,
                "CurrencyDecimalSeparator": ",",
                "CurrencyGroupSeparator": ".",
                "CurrencyGroupSize": 3,
                "StartsWithCurrencySymbol": True,
            },
            "currencyLocale": 1046,
            "currencySymbol": "R$",
            "timeZone": "E. South America Standard Time",
        },
        "customData": None,
        "commercialConditionData": None,
        "openTextField": None,
        "invoiceData": None,
        "changesAttachment": None,
        "callCenterOperatorData": None,
        "packageAttachment": {"packages": []},
        "paymentData": {
            "giftCards": [],
            "transactions": [
                {
                    "isActive": True,
                    "transactionId": transaction_id,
                    "merchantName": account.upper(),
                    "payments": [
                        {
                            "id": transaction_id[:16],
                            "paymentSystem": "2",
                            "paymentSystemName": "Visa",
                            "value": value,
                            "installments": 1,
                            "referenceValue": value,
                            "cardHolder": None,
                            "cardNumber": None,
                            "firstDigits": "411111",
                            "lastDigits": "1111",
                            "cvv2": None,
                            "expireMonth": None,
                            "expireYear": None,
                            "url": None,
                            "giftCardId": None,
                            "giftCardName": None,
                            "giftCardCaption": None,
                            "redemptionCode": None,
                            "group": "creditCard",
                            "tid": transaction_id[:12],
                            "dueDate": None,
                            "connectorResponses": {
                                "Message": None,
                                "tid": transaction_id[:12],
                                "authorizationId": "123456",
                                "status": "authorized",
                                "delayToAutoSettle": 0,
                                "ReturnCode": None,
                                "nsu": "654321",
                                "code": "0",
                            },
                        }
                    ],
                }
            ],
        },
        "shippingData": {
            "id": "shippingData",
            "address": address,
            "logisticsInfo": logistics,
            "trackingHints": None,
            "selectedAddresses": [address],
            "contactInformation": [],
        },
        "ratesAndBenefitsData": {"id": "ratesAndBenefitsData", "rateAndBenefitsIdentifiers": []},
        "marketingData": None,
        "giftRegistryData": None,
        "clientProfileData": {
            "id": "clientProfileData",
            "email": "maria.silva@example.com",
            "firstName": "Maria",
            "lastName": "Silva",
            "documentType": "cpf",
            "document": "12345678909",
            "phone": "+5521999999999",
            "corporateName": None,
            "tradeName": None,
            "corporateDocument": None,
            "stateInscription": None,
            "corporatePhone": None,
            "isCorporate": False,
            "userProfileId": uuid.uuid5(uuid.NAMESPACE_URL, "maria.silva").hex,
            "userProfileVersion": None,
            "customerClass": None,
            "customerCode": None,
        },
        "items": order_items,
        "marketplaceItems": [],
        "authorizationPolicyData": [],
    }


# --------------------------------------------------------------------------- the server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A benchmark opens many connections at once; the default backlog of 5 would stall them.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: VtexEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up, and stop() and the "down" fault cut connections on purpose.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "VtexEmulator/1.0"
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK would add
    # ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.emulator._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._closed_connection(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        received = time.time()
        emulator = self.server.emulator
        url = urlsplit(self.path)
        control = url.path == "/_emulator" or url.path.startswith("/_emulator/")
        if emulator._server is not self.server and not control:
            # A connection accepted just before stop() escaped the cut; while down, nothing
            # is answered.
            self.close_connection = True
            return
        try:
            body = self._read_body()
        except ValueError as exc:
            self.close_connection = True
            self._send(_error(400, "emulator.unreadable-body", str(exc)))
            return
        try:
            if control:
                reply: _Reply | None = emulator._control(
                    self.command, url.path, url.query, body, self.connection
                )
            else:
                reply = emulator._api(
                    self.command, url.path, url.query, self.headers, body, received
                )
        except Exception as exc:
            # An emulator bug must not pass for the "drop" fault (a connection closed unanswered).
            traceback.print_exc()
            reply = _error(500, "emulator.bug", f"{type(exc).__name__}: {exc}")
        if reply is None:
            # The "drop" fault: the request was read, no answer will ever come.
            self.close_connection = True
            return
        self._send(reply)

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        size = int(length)
        if not 0 <= size <= MAX_BODY:
            raise ValueError(f"Content-Length {size} is out of range")
        return self.rfile.read(size)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise ValueError("chunked body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(65537)

    def _send(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        if reply.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(reply.body)


# --------------------------------------------------------------------------- the emulator


@dataclass
class _Fault:
    mode: str
    remaining: int | None
    until: float | None  # time.monotonic()
    retry_after: float
    delay: float
    path_prefix: str | None


@dataclass
class _Hook:
    url: str
    headers: dict[str, str]


@dataclass
class _Verdict:
    """What the router, the credentials check and the spec say about one request."""

    route: _Route | None = None
    params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    data: Any = None
    rejection: _Reply | None = None
    valid: bool | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    validation_ms: float | None = None


class VtexEmulator:
    """VTEX's inventory, feed v3, order and invoice endpoints, in memory.

    Every ``/api`` request is answered in this order: a pending fault (if one matches), else
    404/405 for unknown paths, 401 for missing or wrong app key/token, 400 when the official
    spec (or a documented prose rule) rejects the request, else the endpoint's answer.
    Requests are validated even when a fault answers them, so ``requests()`` says for every
    request whether the client sent it right.
    """

    def __init__(
        self,
        app_key: str = "vtexappkey-test",
        app_token: str = "secret-token",
        port: int = 0,
        lock_window_ms: float = 0.0,
    ) -> None:
        self.app_key = app_key
        self.app_token = app_token
        self.lock_window_ms = lock_window_ms
        self.account = _account_of(app_key)
        self._specs = _load_specs()
        self._port = port
        self._lock = threading.RLock()  # guards the state below
        self._server_lock = threading.RLock()  # serialises start/stop and the "down" timer
        self._connections_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._comeback: threading.Timer | None = None
        self._closed = False
        self._hook_queue: queue.Queue[tuple[_Hook, dict[str, Any]] | None] = queue.Queue()
        self._hook_thread: threading.Thread | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        with self._lock:
            self._inventory: dict[tuple[str, str], dict[str, Any]] = {}
            self._last_put: dict[tuple[str, str], float] = {}
            self._puts: list[dict[str, Any]] = []
            self._orders: dict[str, dict[str, Any]] = {}
            self._feed: list[dict[str, Any]] = []
            self._invoices: dict[str, list[dict[str, Any]]] = {}
            self._tracking: dict[str, list[dict[str, Any]]] = {}
            self._requests: list[dict[str, Any]] = []
            self._faults: list[_Fault] = []
            self._hook: _Hook | None = None
            self._hook_deliveries: list[dict[str, Any]] = []

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError("the emulator has no port before its first start()")
        return f"http://{HOST}:{self._port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> VtexEmulator:
        with self._server_lock:
            if self._closed:
                raise RuntimeError("the emulator was closed")
            if self._server is not None:
                return self
            server = self._bind()
            self._port = server.server_address[1]
            # A short poll interval makes stop() (and so the "down" fault) take effect quickly.
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name=f"vtex-emulator-{self._port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
        return self

    def _bind(self) -> _Server:
        # After stop() the port can linger for a moment; the URL must stay the same.
        deadline = time.monotonic() + 2.0
        while True:
            try:
                return _Server((HOST, self._port), self)
            except OSError:
                if not self._port or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        """Go down: connections are refused (open ones are cut) until start(); state is kept."""
        with self._server_lock:
            self._cancel_comeback()
            self._stop_server()

    def _stop_server(self, keep: socket.socket | None = None) -> None:
        with self._server_lock:
            server, thread = self._server, self._thread
            if server is None or thread is None:
                return
            self._server = self._thread = None
            server.shutdown()
            server.server_close()
            thread.join()
            with self._connections_lock:
                cut = [conn for conn in self._connections if conn is not keep]
            for conn in cut:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._server_lock:
            self.stop()
            self._closed = True
        self._hook_queue.put(None)

    def __enter__(self) -> VtexEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _opened(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(conn)

    def _closed_connection(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(conn)

    def _cancel_comeback(self) -> bool:
        timer, self._comeback = self._comeback, None
        if timer is None:
            return False
        timer.cancel()
        return True

    def _come_back(self, timer: threading.Timer) -> None:
        with self._server_lock:
            if self._comeback is not timer or self._closed:
                return  # cancelled, or the emulator is gone
            self._comeback = None
            self.start()

    # ----------------------------------------------------------------- inventory

    def set_stock(self, sku_id: str, warehouse_id: str, quantity: int) -> None:
        """Set a quantity directly (not a PUT: neither recorded by puts() nor lock-windowed)."""
        with self._lock:
            entry = self._inventory.setdefault(
                (sku_id, warehouse_id), {"unlimitedQuantity": False, "leadTime": "00:00:00"}
            )
            entry["quantity"] = quantity

    def stock(self, sku_id: str, warehouse_id: str) -> int | None:
        with self._lock:
            entry = self._inventory.get((sku_id, warehouse_id))
            return None if entry is None else entry["quantity"]

    def inventory(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"sku": sku, "warehouse": warehouse, **entry}
                for (sku, warehouse), entry in sorted(self._inventory.items())
            ]

    def puts(self, sku_id: str | None = None, warehouse_id: str | None = None) -> list[dict]:
        """Every accepted PUT, oldest first: {"sku", "warehouse", "quantity", "at"} where
        ``at`` is the time.time() at which the request was received."""
        with self._lock:
            return [
                dict(put)
                for put in self._puts
                if (sku_id is None or put["sku"] == sku_id)
                and (warehouse_id is None or put["warehouse"] == warehouse_id)
            ]

    def _reserved(self, sku_id: str, warehouse_id: str) -> int:
        """What open orders hold, as VTEX's reservedQuantity shows it."""
        reserved = 0
        for order in self._orders.values():
            if order["status"] in _RELEASED_STATES:
                continue
            for info in order["shippingData"]["logisticsInfo"]:
                if order["items"][info["itemIndex"]]["id"] != sku_id:
                    continue
                reserved += sum(
                    d["quantity"] for d in info["deliveryIds"] if d["warehouseId"] == warehouse_id
                )
        return reserved

    # ----------------------------------------------------------------- orders

    def add_order(
        self,
        order_id: str,
        items: list[dict],
        state: str = "payment-pending",
        carrier: str = "Correios",
        warehouse_id: str = "1_1",
        value_cents: int | None = None,
    ) -> dict:
        """Create an order (items: [{"sku", "quantity", "price" in cents}, optional "name",
        "refId", "listPrice", "sellingPrice"]) and announce it like VTEX does: a feed item
        and, if a hook is configured, a hook notification (lastState "")."""
        now = time.time()
        order = _build_order(
            order_id,
            items,
            state=state,
            carrier=carrier,
            warehouse_id=warehouse_id,
            value_cents=value_cents,
            account=self.account,
            now=now,
        )
        with self._lock:
            if order_id in self._orders:
                raise ValueError(f"order {order_id} already exists")
            self._orders[order_id] = order
            self._emit(order, "", order["creationDate"], order["creationDate"])
            return copy.deepcopy(order)

    def set_state(self, order_id: str, state: str, *, notify: bool = True) -> None:
        """Move an order to ``state``: a feed item plus a hook notification (in the background).
        Setting the state it already has is a no-op, as VTEX emits no event then. With
        ``notify=False`` the change is silent (a lost notification, or a feed item another
        reader took): only reading the order shows it."""
        with self._lock:
            order = self._orders[order_id]
            self._change_state(order, state, time.time(), notify=notify)

    def _change_state(
        self, order: dict[str, Any], state: str, now: float, *, notify: bool = True
    ) -> None:
        last_state, last_change = order["status"], order["lastChange"]
        if state == last_state:
            return
        current = _iso(now)
        order["status"] = state
        order["statusDescription"] = _STATUS_DESCRIPTIONS.get(state, state)
        order["lastChange"] = current
        if state == "invoiced":
            order["invoicedDate"] = current
        if order["authorizedDate"] is None and state not in _UNAUTHORIZED_STATES:
            order["authorizedDate"] = current
        if notify:
            self._emit(order, last_state, last_change, current)

    def _emit(self, order: dict[str, Any], last_state: str, last_change: str, current: str) -> None:
        event_id = uuid.uuid4().hex.upper()
        # Handles are opaque to clients; VTEX's are long base64 tokens.
        handle = base64.b64encode(f"{self.account}:{event_id}:{uuid.uuid4()}".encode()).decode()
        self._feed.append(
            {
                "eventId": event_id,
                "handle": handle,
                "domain": FEED_DOMAIN,
                "state": order["status"],
                "lastState": last_state,
                "orderId": order["orderId"],
                "lastChange": last_change,
                "currentChange": current,
                # Not in the schema; the feed v3 guide shows it on every item.
                "origin": {"account": self.account, "key": self.app_key},
            }
        )
        if self._hook is not None:
            self._start_hook_worker()
            payload = {
                "Domain": FEED_DOMAIN,
                "OrderId": order["orderId"],
                "State": order["status"],
                "LastState": last_state,
                "LastChange": last_change,
                "CurrentChange": current,
                "Origin": {"Account": self.account, "Key": self.app_key},
            }
            self._hook_queue.put((self._hook, payload))

    def order(self, order_id: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._orders[order_id])

    def feed_items(self) -> list[dict]:
        """The feed items not committed yet, oldest first."""
        with self._lock:
            return copy.deepcopy(self._feed)

    def invoices(self, order_id: str) -> list[dict]:
        """Every invoice POST body accepted for the order, exactly as received, oldest first
        (re-sent invoice numbers included). Tracking PATCHes are kept apart, see
        tracking_updates(); the merged result is in order(...)["packageAttachment"]."""
        with self._lock:
            return copy.deepcopy(self._invoices.get(order_id, []))

    def tracking_updates(self, order_id: str) -> list[dict]:
        """Every accepted PATCH .../invoice/{invoiceNumber} body, plus its "invoiceNumber"."""
        with self._lock:
            return copy.deepcopy(self._tracking.get(order_id, []))

    # ----------------------------------------------------------------- hook

    def configure_hook(self, url: str, headers: dict[str, str]) -> None:
        """Like VTEX's hook configuration: POST {"hookConfig": "ping"} first and refuse the
        hook (RuntimeError) unless it answers 200."""
        hook = _Hook(url, dict(headers))
        with httpx.Client(timeout=HOOK_TIMEOUT) as client:
            delivery = self._deliver(client, hook, "ping", {"hookConfig": "ping"})
        if delivery["status"] != 200:
            raise RuntimeError(
                f"hook {url} answered the ping with {delivery['status'] or delivery['error']}"
            )
        with self._lock:
            self._hook = hook

    def hook_deliveries(self) -> list[dict]:
        """Every hook POST: {"kind": "ping"|"notification", "url", "body", "status" (None if
        no answer), "error", "at", "seconds"}, in the order they were sent."""
        with self._lock:
            return copy.deepcopy(self._hook_deliveries)

    def _start_hook_worker(self) -> None:
        # One worker delivers notifications in the order the states changed.
        if self._hook_thread is None:
            self._hook_thread = threading.Thread(
                target=self._hook_worker, name="vtex-emulator-hook", daemon=True
            )
            self._hook_thread.start()

    def _hook_worker(self) -> None:
        with httpx.Client(timeout=HOOK_TIMEOUT) as client:
            while (job := self._hook_queue.get()) is not None:
                hook, payload = job
                self._deliver(client, hook, "notification", payload)

    def _deliver(
        self, client: httpx.Client, hook: _Hook, kind: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        at = time.time()
        status: int | None = None
        error: str | None = None
        try:
            headers = {"Content-Type": "application/json", **hook.headers}
            status = client.post(hook.url, json=payload, headers=headers).status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        delivery = {
            "kind": kind,
            "url": hook.url,
            "body": payload,
            "status": status,
            "error": error,
            "at": at,
            "seconds": time.time() - at,
        }
        with self._lock:
            self._hook_deliveries.append(delivery)
        return delivery

    # ----------------------------------------------------------------- faults

    def fault(
        self,
        mode: str,
        *,
        count: int | None = None,
        seconds: float | None = None,
        retry_after: float | None = None,
        delay: float = 0.0,
        path_prefix: str | None = None,
    ) -> None:
        """Misbehave for the next ``count`` matching requests, or for ``seconds``, or (neither)
        until clear_faults(). Faults queue up: each request takes the oldest one that matches.

        "down" is different: it refuses every connection for ``seconds`` (required) right now,
        then comes back by itself; count and path_prefix do not apply to it."""
        self._fault(mode, count, seconds, retry_after, delay, path_prefix, None)

    def _fault(
        self,
        mode: str,
        count: int | None,
        seconds: float | None,
        retry_after: float | None,
        delay: float,
        path_prefix: str | None,
        keep: socket.socket | None,
    ) -> None:
        if mode not in _FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; one of {sorted(_FAULT_MODES)}")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        if seconds is not None and seconds <= 0:
            raise ValueError("seconds must be positive")
        if delay < 0:
            raise ValueError("delay must not be negative")
        if mode == "down":
            if seconds is None:
                raise ValueError('"down" needs seconds: it comes back by itself')
            if count is not None or path_prefix is not None:
                raise ValueError('"down" refuses every connection: no count, no path_prefix')
            with self._server_lock:
                if self._server is None:
                    raise RuntimeError("the emulator is not running")
                self._cancel_comeback()
                self._stop_server(keep)
                timer = threading.Timer(seconds, lambda: self._come_back(timer))
                timer.daemon = True
                self._comeback = timer
                timer.start()
            return
        until = None if seconds is None else time.monotonic() + seconds
        with self._lock:
            self._faults.append(
                _Fault(
                    mode,
                    count,
                    until,
                    1.0 if retry_after is None else retry_after,
                    delay,
                    path_prefix,
                )
            )

    def clear_faults(self) -> None:
        """Drop pending faults; if a "down" fault is running, come back now."""
        with self._lock:
            self._faults.clear()
        with self._server_lock:
            if self._cancel_comeback() and not self._closed:
                self.start()

    def _take_fault(self, path: str) -> _Fault | None:
        now = time.monotonic()
        with self._lock:
            self._faults = [f for f in self._faults if f.until is None or f.until > now]
            for fault in self._faults:
                if fault.path_prefix is not None and not path.startswith(fault.path_prefix):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                return fault
        return None

    # ----------------------------------------------------------------- inspection

    def requests(self) -> list[dict]:
        """Every /api request received, oldest first: {"method", "path", "query" (dict),
        "status" (None when dropped), "at" (time.time() when received), "valid" (True/False
        per the spec and prose checks; None when not checked: 404, 405, 401), "errors",
        "fault" (the mode that answered, or None), "validation_ms"}."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def reset(self) -> None:
        """Forget everything (inventory, orders, feed, invoices, logs, faults, hook); a running
        "down" fault ends now."""
        self.clear_faults()
        self._reset_state()

    # ----------------------------------------------------------------- the VTEX API

    def _api(
        self,
        method: str,
        path: str,
        query_string: str,
        headers: Message,
        body: bytes,
        received: float,
    ) -> _Reply | None:
        fault = self._take_fault(path)
        verdict = self._examine(method, path, query_string, headers, body)
        reply = self._answer(fault, verdict, received)
        with self._lock:
            self._requests.append(
                {
                    "method": method,
                    "path": path,
                    "query": dict(parse_qsl(query_string, keep_blank_values=True)),
                    "status": None if reply is None else reply.status,
                    "at": received,
                    "valid": verdict.valid,
                    "errors": verdict.errors,
                    "fault": None if fault is None else fault.mode,
                    "validation_ms": verdict.validation_ms,
                }
            )
        return reply

    def _answer(self, fault: _Fault | None, verdict: _Verdict, received: float) -> _Reply | None:
        if fault is not None:
            if fault.mode == "drop":
                return None
            if fault.mode == "429":
                return _error(429, "TooManyRequests", "Too many requests")
            if fault.mode == "429-retry-after":
                reply = _error(429, "TooManyRequests", "Too many requests")
                after = fault.retry_after
                # Delta-seconds are integers in RFC 9110; a fraction is kept for fast tests.
                reply.headers["Retry-After"] = str(int(after) if after == int(after) else after)
                return reply
            if fault.mode == "423":
                params = verdict.params
                return _lock_reply(
                    self.account, params.get("skuId", "?"), params.get("warehouseId", "?")
                )
            if fault.mode == "500":
                return _error(500, "InternalServerError", "Internal server error (injected)")
            time.sleep(fault.delay)  # "slow", then the normal answer
        if verdict.rejection is not None:
            return verdict.rejection
        assert verdict.route is not None
        action = getattr(self, verdict.route.action)
        return action(verdict, received)

    def _match(self, method: str, path: str) -> tuple[_Route | None, dict[str, str], list[str]]:
        allowed = []
        for route in _ROUTES:
            found = route.regex.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}, []
            allowed.append(route.method)
        return None, {}, allowed

    def _examine(
        self, method: str, path: str, query_string: str, headers: Message, body: bytes
    ) -> _Verdict:
        route, params, allowed = self._match(method, path)
        if route is None:
            if allowed:
                reply = _error(405, "MethodNotAllowed", f"{method} is not allowed on {path}")
                reply.headers["Allow"] = ", ".join(allowed)
                return _Verdict(rejection=reply)
            return _Verdict(rejection=_error(404, "NotFound", f"No route for {method} {path}"))
        verdict = _Verdict(route=route, params=params)
        verdict.query = dict(parse_qsl(query_string, keep_blank_values=True))
        if (
            headers.get(APP_KEY_HEADER) != self.app_key
            or headers.get(APP_TOKEN_HEADER) != self.app_token
        ):
            verdict.rejection = _error(
                401, "Unauthorized", f"Missing or wrong {APP_KEY_HEADER} / {APP_TOKEN_HEADER}"
            )
            return verdict
        started = time.perf_counter()
        errors = _request_errors(
            self._specs, route, path, params, query_string, Headers(list(headers.items())), body
        )
        verdict.validation_ms = (time.perf_counter() - started) * 1000
        if not errors:
            operation = self._specs[route.spec].operations[(route.method, route.pattern)]
            # openapi-core parsed the body only if the operation takes one (a GET's is ignored).
            if body and "requestBody" in operation:
                verdict.data = json.loads(body)
            errors = self._prose_errors(route, verdict, body)
        verdict.valid = not errors
        verdict.errors = errors
        if errors:
            verdict.rejection = _error(
                400, "InvalidRequest", f"{method} {route.pattern} breaks the VTEX contract", errors
            )
        return verdict

    def _prose_errors(self, route: _Route, verdict: _Verdict, body: bytes) -> list[dict]:
        """Rules VTEX states in prose (PROVENANCE.md) but its schema does not enforce."""
        errors: list[dict[str, Any]] = []
        if route.method in ("PUT", "POST", "PATCH") and not body:
            # The specs leave requestBody optional, so openapi-core accepts an empty body; VTEX's
            # prose says a PUT without quantity zeroes the stock, which must never pass silently.
            errors.append({"in": "body", "message": "a JSON body is required"})
            return errors
        data = verdict.data
        if route.action == "_get_feed":
            maxlot = verdict.query.get("maxlot", "")
            if not maxlot.isdigit() or not 1 <= int(maxlot) <= FEED_MAX_LOT:
                errors.append(
                    {
                        "in": "query",
                        "name": "maxlot",
                        "message": f"maxlot must be an integer from 1 to {FEED_MAX_LOT}, "
                        f"got {maxlot!r} (feed v3 guide; the schema types it as a string)",
                    }
                )
        elif route.action == "_post_invoice":
            value = data.get("invoiceValue")
            if not isinstance(value, str) or not value.isdigit():
                errors.append(
                    {
                        "in": "body",
                        "path": "invoiceValue",
                        "message": f"invoiceValue must be a string of integer cents, got {value!r}",
                    }
                )
            for index, item in enumerate(data.get("items") or []):
                price = item.get("price")
                if not isinstance(price, int) or isinstance(price, bool):
                    errors.append(
                        {
                            "in": "body",
                            "path": f"items/{index}/price",
                            "message": f"price must be an integer of cents, got {price!r}",
                        }
                    )
            if not data.get("invoiceNumber"):
                # Nullable in the schema, yet it is the key of every later tracking update.
                errors.append(
                    {"in": "body", "path": "invoiceNumber", "message": "invoiceNumber is missing"}
                )
        return errors

    def _put_inventory(self, verdict: _Verdict, received: float) -> _Reply:
        sku_id, warehouse_id = verdict.params["skuId"], verdict.params["warehouseId"]
        data = verdict.data
        key = (sku_id, warehouse_id)
        with self._lock:
            last = self._last_put.get(key)
            window = self.lock_window_ms / 1000
            if window > 0 and last is not None and abs(received - last) < window:
                # PROVENANCE: colliding updates get 423 and only the first is kept.
                return _lock_reply(self.account, sku_id, warehouse_id)
            self._inventory[key] = {
                "quantity": data["quantity"],
                "unlimitedQuantity": data["unlimitedQuantity"],
                "leadTime": data["leadTime"],
            }
            self._last_put[key] = received
            self._puts.append(
                {
                    "sku": sku_id,
                    "warehouse": warehouse_id,
                    "quantity": data["quantity"],
                    "at": received,
                }
            )
        # The prose: "Successful requests receive a 200 OK status code with true in the body".
        return _json_reply(200, True)

    def _get_inventory(self, verdict: _Verdict, received: float) -> _Reply:
        sku_id = verdict.params["skuId"]
        with self._lock:
            balance = [
                {
                    "warehouseId": warehouse,
                    "warehouseName": f"Warehouse {warehouse}",
                    "totalQuantity": (
                        UNLIMITED_QUANTITY if entry["unlimitedQuantity"] else entry["quantity"]
                    ),
                    "reservedQuantity": self._reserved(sku_id, warehouse),
                    "hasUnlimitedQuantity": entry["unlimitedQuantity"],
                    "timeToRefill": None,
                    "dateOfSupplyUtc": None,
                    "leadTime": entry["leadTime"],
                }
                for (sku, warehouse), entry in sorted(self._inventory.items())
                if sku == sku_id
            ]
        return _json_reply(200, {"skuId": sku_id, "balance": balance})

    def _get_feed(self, verdict: _Verdict, received: float) -> _Reply:
        # VTEX hides items handed out for a visibility timeout; here uncommitted items simply
        # come back on the next read, which is the behaviour clients must cope with anyway.
        with self._lock:
            items = copy.deepcopy(self._feed[: int(verdict.query["maxlot"])])
        return _json_reply(200, items)

    def _commit_feed(self, verdict: _Verdict, received: float) -> _Reply:
        handles = set(verdict.data["handles"])
        with self._lock:
            # Unknown handles are ignored, as committing twice must be harmless.
            self._feed = [item for item in self._feed if item["handle"] not in handles]
        # The spec's 200 has no content.
        return _Reply(200)

    def _get_order(self, verdict: _Verdict, received: float) -> _Reply:
        order_id = verdict.params["orderId"]
        with self._lock:
            order = self._orders.get(order_id)
            if order is None:
                return _error(404, "OMS003", f"Order {order_id} not found")
            return _json_reply(200, order)

    def _post_invoice(self, verdict: _Verdict, received: float) -> _Reply:
        order_id = verdict.params["orderId"]
        data = verdict.data
        receipt = uuid.uuid4().hex
        with self._lock:
            order = self._orders.get(order_id)
            if order is None:
                return _error(404, "OMS003", f"Order {order_id} not found")
            self._invoices.setdefault(order_id, []).append(copy.deepcopy(data))
            packages = order["packageAttachment"]["packages"]
            known = {p["invoiceNumber"] for p in packages}
            # The prose: re-sending an invoiceNumber only yields a new receipt.
            if data["invoiceNumber"] not in known:
                packages.append(self._package(order, data))
                if data["type"] == "Output":
                    self._change_state(order, "invoiced", received)
        return _json_reply(200, {"date": _iso(received), "orderId": order_id, "receipt": receipt})

    @staticmethod
    def _package(order: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        index_of = {item["id"]: index for index, item in enumerate(order["items"])}
        return {
            "items": [
                {
                    "itemIndex": index_of.get(item["id"], -1),
                    "quantity": item["quantity"],
                    "price": item["price"],
                    "description": None,
                    "unitMultiplier": 1,
                }
                for item in data["items"]
            ],
            "courier": data.get("courier"),
            "invoiceNumber": data["invoiceNumber"],
            "invoiceValue": int(data["invoiceValue"]),
            "invoiceUrl": data.get("invoiceUrl"),
            "issuanceDate": data["issuanceDate"],
            "trackingNumber": data.get("trackingNumber"),
            "invoiceKey": data.get("invoiceKey"),
            "trackingUrl": data.get("trackingUrl"),
            "embeddedInvoice": data.get("embeddedInvoice") or "",
            "type": data["type"],
            "courierStatus": None,
            "cfop": None,
            "restitutions": {},
            "volumes": 1,
            "EnableInferItems": None,
        }

    def _patch_invoice(self, verdict: _Verdict, received: float) -> _Reply:
        order_id, number = verdict.params["orderId"], verdict.params["invoiceNumber"]
        data = verdict.data
        with self._lock:
            order = self._orders.get(order_id)
            if order is None:
                return _error(404, "OMS003", f"Order {order_id} not found")
            packages = order["packageAttachment"]["packages"]
            package = next((p for p in packages if p["invoiceNumber"] == number), None)
            if package is None:
                return _error(404, "OMS004", f"Invoice {number} not found in order {order_id}")
            self._tracking.setdefault(order_id, []).append({**data, "invoiceNumber": number})
            for name in ("trackingNumber", "trackingUrl", "courier"):
                if name in data:
                    package[name] = data[name]
        receipt = uuid.uuid4().hex
        return _json_reply(200, {"date": _iso(received), "orderId": order_id, "receipt": receipt})

    # ----------------------------------------------------------------- the control API

    def _control(
        self, method: str, path: str, query_string: str, body: bytes, conn: socket.socket
    ) -> _Reply:
        """JSON control API for standalone use:

        GET /_emulator/inventory              POST /_emulator/stock {sku, warehouse, quantity}
        GET /_emulator/puts?sku=&warehouse=   POST /_emulator/orders {order_id, items, ...}
        GET /_emulator/orders/{id}            POST /_emulator/orders/{id}/state {state}
        GET /_emulator/orders/{id}/invoices   GET  /_emulator/orders/{id}/tracking
        GET /_emulator/feed                   POST /_emulator/faults {mode, count, ...}
        GET /_emulator/requests               DELETE /_emulator/faults
        GET /_emulator/hook                   POST /_emulator/hook {url, headers}
        POST /_emulator/reset
        """
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return _error(400, "emulator.bad-json", "the body is not JSON")
        query = dict(parse_qsl(query_string))
        parts = [unquote(p) for p in path.strip("/").split("/")[1:]]
        ok = _json_reply(200, {"ok": True})
        try:
            match method, parts:
                case "GET", ["inventory"]:
                    return _json_reply(200, self.inventory())
                case "GET", ["puts"]:
                    return _json_reply(
                        200, self.puts(query.get("sku") or None, query.get("warehouse") or None)
                    )
                case "POST", ["stock"]:
                    quantity = data["quantity"]
                    if not isinstance(quantity, int):
                        raise TypeError("quantity must be an integer")
                    self.set_stock(str(data["sku"]), str(data["warehouse"]), quantity)
                    return ok
                case "POST", ["orders"]:
                    return _json_reply(201, self.add_order(**data))
                case "GET", ["orders", order_id]:
                    return _json_reply(200, self.order(order_id))
                case "POST", ["orders", order_id, "state"]:
                    self.set_state(order_id, str(data["state"]))
                    return ok
                case "GET", ["orders", order_id, "invoices"]:
                    return _json_reply(200, self.invoices(order_id))
                case "GET", ["orders", order_id, "tracking"]:
                    return _json_reply(200, self.tracking_updates(order_id))
                case "GET", ["feed"]:
                    return _json_reply(200, self.feed_items())
                case "POST", ["faults"]:
                    args = {"count": None, "seconds": None, "retry_after": None}
                    args |= {"delay": 0.0, "path_prefix": None} | data
                    self._fault(keep=conn, **args)
                    # After "down" this very connection is the only one left open.
                    return _Reply(ok.status, ok.body, ok.content_type, close=data["mode"] == "down")
                case "DELETE", ["faults"]:
                    self.clear_faults()
                    return ok
                case "GET", ["hook"]:
                    return _json_reply(200, self.hook_deliveries())
                case "POST", ["hook"]:
                    self.configure_hook(str(data["url"]), dict(data.get("headers") or {}))
                    return ok
                case "POST", ["reset"]:
                    self.reset()
                    return ok
                case "GET", ["requests"]:
                    return _json_reply(200, self.requests())
        except KeyError as exc:
            # Unknown order ids, and missing fields in the request body.
            status = 404 if method == "GET" or "orders" in parts else 400
            return _error(status, "emulator", f"unknown or missing: {exc}")
        except (TypeError, ValueError) as exc:
            return _error(400, "emulator", str(exc))
        except RuntimeError as exc:
            return _error(502, "emulator", str(exc))
        return _error(404, "emulator", f"no control endpoint {method} {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.emulators.vtex", description="A VTEX emulator on 127.0.0.1."
    )
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--app-key", default="vtexappkey-test")
    parser.add_argument("--app-token", default="secret-token")
    parser.add_argument("--lock-window-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    emulator = VtexEmulator(args.app_key, args.app_token, args.port, args.lock_window_ms).start()
    print(f"VTEX emulator listening on {emulator.url} (specs: {specs_dir()})", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.close()


if __name__ == "__main__":
    main()
