"""The project's own description of what the VTEX emulator serves, and the check of a request
against it.

Invariant: every ``/api`` request the emulator answers with its endpoint's normal answer has
passed this description: the route (path parameters), the headers VTEX marks required
(Content-Type and Accept; AppKey and AppToken are checked before, as credentials), the query
parameters and the JSON body. The description needs nothing outside this repository, so the
emulator checks requests the same way on a bare clone; where VTEX's official files are present,
``official`` adds their check on top.

Bodies are pydantic models in strict mode, transcribed from VTEX's schemas (logistics-api.json
and orders-api.json): required fields, JSON types, nullability. VTEX's schemas forbid no extra
fields on these operations (no ``additionalProperties: false``), so neither do the models.
Where VTEX's prose is stricter than its schema, the model checks the prose too, and its message
says so: ``invoiceValue`` is a string of integer cents greater than 0, an invoice needs an
``invoiceNumber`` (the key of later tracking updates) and an issue date with a time, the lead
time reads ``dd.hh:mm:ss``, the feed's ``maxlot`` is 1 to 10, a PUT/POST/PATCH needs a body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, unquote

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import models_json_schema
from pydantic_core import PydanticCustomError

APP_KEY_HEADER = "X-VTEX-API-AppKey"
APP_TOKEN_HEADER = "X-VTEX-API-AppToken"  # noqa: S105 (a header name)
# PROVENANCE: "GET /api/orders/feed?maxlot=N (N <= 10)"; the schema types maxlot as a string.
FEED_MAX_LOT = 10
_INT32 = 2**31
# .NET's TimeSpan, as VTEX writes lead times: "10.10:00:00" (days optional).
_LEAD_TIME = re.compile(r"^(\d{1,4}\.)?([01]\d|2[0-3]):[0-5]\d:[0-5]\d$")
# ISO 8601 date and time, zone optional (VTEX's examples carry one; its schema says "string").
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:?\d{2})?$", re.IGNORECASE
)


# --------------------------------------------------------------------------- field rules


def _not_null(value: object) -> object:
    if value is None:
        raise PydanticCustomError("not_null", "may be left out, but not null (VTEX's schema)")
    return value


# A key VTEX's schema lets a client leave out but not send as null.
Omittable = Annotated[str | None, BeforeValidator(_not_null), WithJsonSchema({"type": "string"})]
Int32 = Annotated[int, Field(ge=-_INT32, le=_INT32 - 1)]


def is_lead_time(value: object) -> bool:
    return isinstance(value, str) and _LEAD_TIME.match(value) is not None


def _lead_time(value: str) -> str:
    if not is_lead_time(value):
        raise PydanticCustomError(
            "lead_time",
            "a lead time reads dd.hh:mm:ss (VTEX's prose), got {value}",
            {"value": repr(value)},
        )
    return value


def _cents(value: str) -> str:
    if not value.isascii() or not value.isdigit() or int(value) <= 0:
        raise PydanticCustomError(
            "cents",
            "must be a string of integer cents greater than 0, no separator (VTEX's prose: "
            "$24.99 is '2499'), got {value}",
            {"value": repr(value)},
        )
    return value


def _date_time(value: str) -> str:
    if not _DATE_TIME.match(value):
        raise PydanticCustomError(
            "date_time",
            "must be an ISO 8601 date and time (VTEX's prose: 'you must add date and time'), "
            "got {value}",
            {"value": repr(value)},
        )
    return value


def _present(value: str) -> str:
    if not value:
        raise PydanticCustomError(
            "missing_number", "must not be empty: later tracking updates are addressed by it"
        )
    return value


LeadTime = Annotated[str, AfterValidator(_lead_time)]
Cents = Annotated[str, AfterValidator(_cents)]
DateTime = Annotated[str, AfterValidator(_date_time)]


# --------------------------------------------------------------------------- bodies


class _Body(BaseModel):
    # Strict: JSON types as the schema says (no "5" for 5, no 5.0 for an int32, no true for 1).
    # Fields are named in Python's style and read by VTEX's camelCase names.
    model_config = ConfigDict(strict=True, extra="allow", alias_generator=to_camel)


class InventoryUpdate(_Body):
    """PUT /api/logistics/pvt/inventory/skus/{skuId}/warehouses/{warehouseId}."""

    quantity: Int32
    unlimited_quantity: bool
    lead_time: LeadTime
    date_utc_on_balance_system: Omittable = None


class QuantityUpdate(_Body):
    """PATCH /api/logistics/pvt/inventory/skus/{skuId}/warehouses/{warehouseId}/quantity:
    the quantity only; the lead time stays as it is."""

    quantity: Int32
    unlimited_quantity: bool
    date_utc_on_balance_system: Omittable = None


class FeedCommit(_Body):
    """POST /api/orders/feed."""

    handles: list[str]


class InvoiceItem(_Body):
    id: str
    price: int = Field(description="Unit price in integer cents.")
    quantity: int
    description: Omittable = None


class Invoice(_Body):
    """POST /api/oms/pvt/orders/{orderId}/invoice."""

    type: Literal["Output", "Input"]
    issuance_date: DateTime
    # Nullable in the schema, yet it is the key of every later tracking update (prose).
    invoice_number: Annotated[str, AfterValidator(_present)]
    invoice_value: Cents
    invoice_key: str | None = None
    invoice_url: str | None = None
    embedded_invoice: str | None = None
    courier: Omittable = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    dispatched_date: str | None = None
    items: list[InvoiceItem]


class TrackingUpdate(_Body):
    """PATCH /api/oms/pvt/orders/{orderId}/invoice/{invoiceNumber}: every key is required;
    only trackingNumber may not be null."""

    tracking_number: str
    tracking_url: str | None
    courier: str | None
    dispatched_date: str | None


class FeedQuery(BaseModel):
    """GET /api/orders/feed's query."""

    model_config = ConfigDict(extra="allow")

    maxlot: int = Field(ge=1, le=FEED_MAX_LOT, description="Items to read, 1 to 10.")


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Operation:
    method: str
    pattern: str  # as in VTEX's files, e.g. /api/oms/pvt/orders/{orderId}
    spec: str  # which of VTEX's files describes it: "logistics" or "orders"
    action: str  # the emulator's handler
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = re.split(r"(\{\w+\})", self.pattern)
        regex = "".join(
            f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts
        )
        object.__setattr__(self, "regex", re.compile(f"^{regex}$"))

    @property
    def path_parameters(self) -> list[str]:
        return list(self.regex.groupindex)


_SKU_WAREHOUSE = "/api/logistics/pvt/inventory/skus/{skuId}/warehouses/{warehouseId}"
_ORDER = "/api/oms/pvt/orders/{orderId}"

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "PUT",
        _SKU_WAREHOUSE,
        "logistics",
        "put_inventory",
        "Set quantity, unlimited flag and lead time of a SKU in a warehouse",
        body=InventoryUpdate,
    ),
    Operation(
        "PATCH",
        f"{_SKU_WAREHOUSE}/quantity",
        "logistics",
        "patch_quantity",
        "Set only the quantity of a SKU in a warehouse (the lead time stays)",
        body=QuantityUpdate,
    ),
    Operation(
        "GET",
        "/api/logistics/pvt/inventory/skus/{skuId}",
        "logistics",
        "get_inventory",
        "A SKU's balance in every warehouse",
    ),
    Operation(
        "GET", "/api/orders/feed", "orders", "get_feed", "Read feed v3 items", query=FeedQuery
    ),
    Operation(
        "POST",
        "/api/orders/feed",
        "orders",
        "commit_feed",
        "Commit feed items by handle",
        body=FeedCommit,
    ),
    Operation("GET", _ORDER, "orders", "get_order", "An order"),
    Operation(
        "POST",
        f"{_ORDER}/invoice",
        "orders",
        "post_invoice",
        "Notify an invoice (re-sending a number only yields a new receipt)",
        body=Invoice,
    ),
    Operation(
        "PATCH",
        f"{_ORDER}/invoice/{{invoiceNumber}}",
        "orders",
        "patch_invoice",
        "Update an invoice's tracking",
        body=TrackingUpdate,
    ),
)


@dataclass
class Match:
    operation: Operation | None
    params: dict[str, str]  # decoded path parameters
    allowed: list[str]  # methods of the path, when the method did not match


def match(method: str, raw_path: str) -> Match:
    """The operation serving ``method raw_path``; each parameter is one raw segment, decoded
    only after routing so that an encoded '/' stays inside its id."""
    allowed = []
    for operation in OPERATIONS:
        found = operation.regex.match(raw_path)
        if found is None:
            continue
        if operation.method == method:
            return Match(operation, {k: unquote(v) for k, v in found.groupdict().items()}, [])
        allowed.append(operation.method)
    return Match(None, {}, allowed)


# --------------------------------------------------------------------------- the check


def problems(
    operation: Operation, query_string: str, headers: Message, body: bytes
) -> list[dict[str, Any]]:
    """Every way the request breaks the description, as short JSON-able explanations
    (``{"layer": "own", "in", "name" | "path", "message"}``); empty when it conforms."""
    found: list[dict[str, Any]] = []
    for name in ("Content-Type", "Accept"):
        if not headers.get(name):
            found.append(_problem("header", f"{name} is required on every VTEX operation", name))
    if operation.query is not None:
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        try:
            operation.query.model_validate(query)
        except ValidationError as error:
            found += _from_pydantic(error, "query")
    if operation.body is None:
        return found
    media = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if headers.get("Content-Type") and media != "application/json":
        found.append(
            _problem("header", f"the body must be application/json, got {media!r}", "Content-Type")
        )
    if not body:
        # VTEX's prose: a PUT without quantity zeroes the stock; it must never pass silently.
        found.append(_problem("body", "a JSON body is required"))
        return found
    try:
        operation.body.model_validate_json(body)
    except ValidationError as error:
        found += _from_pydantic(error, "body")
    return found


def _problem(where: str, message: str, name: str | None = None) -> dict[str, Any]:
    problem: dict[str, Any] = {"layer": "own", "in": where}
    if name is not None:
        problem["name"] = name
    problem["message"] = message
    return problem


def _from_pydantic(error: ValidationError, where: str) -> list[dict[str, Any]]:
    found = []
    for detail in error.errors(include_url=False, include_input=False):
        location = "/".join(str(part) for part in detail["loc"])
        problem = {"layer": "own", "in": where}
        if where == "query":
            problem["name"] = location
        else:
            problem["path"] = location
        problem["message"] = detail["msg"]
        found.append(problem)
    return found


# --------------------------------------------------------------------------- as OpenAPI


def openapi_document() -> dict[str, Any]:
    """The description as an OpenAPI 3.1 document (served at ``/_emulator/openapi.json``)."""
    bodies = {op.body for op in OPERATIONS if op.body is not None}
    by_model, definitions = models_json_schema(
        [(model, "validation") for model in sorted(bodies, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    headers = [
        {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
        for name in ("Content-Type", "Accept")
    ]
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in op.path_parameters
        ] + headers
        if op.query is not None:
            schema = op.query.model_json_schema()
            parameters += [
                {
                    "name": name,
                    "in": "query",
                    "required": name in schema.get("required", []),
                    "schema": prop,
                }
                for name, prop in schema["properties"].items()
            ]
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": op.action,
            "parameters": parameters,
            "responses": {"400": {"description": "The request breaks this description"}},
        }
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": by_model[(op.body, "validation")]}},
            }
        paths.setdefault(op.pattern, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "VTEX emulator: what it serves",
            "version": "1",
            "description": (__doc__ or "").strip(),
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "appKey": {"type": "apiKey", "in": "header", "name": APP_KEY_HEADER},
                "appToken": {"type": "apiKey", "in": "header", "name": APP_TOKEN_HEADER},
            },
        },
        "security": [{"appKey": [], "appToken": []}],
    }
