"""Barcodes and product names: PUT /barcodes/{code}, PUT /products/{sku}. Writers change them,
readers read them, and find products by SKU prefix, barcode or name (GET /products?q=, from the
products view)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import SkipValidation

from api.cursors import POSITION_HEADER, decode_cursor, encode_cursor
from api.decimal_json import DecimalJSONRoute
from api.dependencies import ContainerDep, ProductsAfter, Reader, Writer
from api.schemas import (
    CODE_PATTERN,
    ERRORS,
    LINE_PATTERN,
    READ_ERRORS,
    BarcodeEntryOut,
    BarcodeIn,
    ErrorOut,
    NamedProductOut,
    ProductIn,
    ProductOut,
    ProductPage,
)
from ledger.barcodes import display_barcode
from ledger.catalog import MAX_NAME_LENGTH, BarcodeEntry, ProductInfo
from ledger.codes import check_code, check_text
from projections.products import ProductRow

router = APIRouter(route_class=DecimalJSONRoute, tags=["catalog"])

Code = Annotated[
    str, Path(min_length=1, max_length=64, json_schema_extra={"pattern": CODE_PATTERN})
]
_BARCODE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorOut, "description": "unknown_barcode: no SKU has this barcode."},
    409: {"model": ErrorOut, "description": "barcode_taken: another SKU holds this barcode."},
    422: {
        "model": ErrorOut,
        "description": "invalid_barcode (a GTIN whose check digit is wrong, or a code that "
        "breaks the code rules) or invalid_input.",
    },
}


def barcode_out(code: str, entry: BarcodeEntry, position: int | None = None) -> dict[str, Any]:
    return {
        "code": display_barcode(entry.key),
        "key": entry.key,
        "sku": entry.sku,
        "units": entry.units,
        "position": position,
    }


def product_out(sku: str, product: ProductInfo | None) -> dict[str, Any]:
    if product is None:
        return {"sku": sku, "name": None, "barcodes": []}
    return {
        "sku": sku,
        "name": product.name,
        "barcodes": [
            {"code": display_barcode(key), "units": units}
            for key, units in sorted(product.barcodes.items())
        ],
    }


@router.put(
    "/barcodes/{code}",
    response_model=BarcodeEntryOut,
    responses={201: {"model": BarcodeEntryOut}, **_BARCODE_ERRORS},
    summary="Give a barcode to a SKU; a case's barcode stands for several units",
)
def put_barcode(
    code: Code,
    body: Annotated[SkipValidation[BarcodeIn], Body()],
    container: ContainerDep,
    _: Writer,
) -> JSONResponse:
    entry, changed, position = container.catalog.put_barcode(code, body)
    return JSONResponse(barcode_out(code, entry, position), status_code=201 if changed else 200)


@router.get("/barcodes/{code}", response_model=BarcodeEntryOut, responses=_BARCODE_ERRORS)
def get_barcode(code: Code, container: ContainerDep, _: Reader) -> dict[str, Any]:
    return barcode_out(code, container.catalog.barcode(code))


@router.delete(
    "/barcodes/{code}",
    status_code=204,
    responses={
        204: {
            "description": "Removed. The header gives the write's position for `?after=`.",
            "headers": {
                POSITION_HEADER: {
                    "description": "The write's position, as `position` elsewhere.",
                    "schema": {"type": "integer"},
                }
            },
        },
        **_BARCODE_ERRORS,
    },
)
def delete_barcode(code: Code, container: ContainerDep, _: Writer) -> Response:
    position = container.catalog.delete_barcode(code)
    headers = {} if position is None else {POSITION_HEADER: str(position)}
    return Response(status_code=204, headers=headers)


@router.put(
    "/products/{sku}",
    response_model=NamedProductOut,
    responses=ERRORS,
    summary="Name a product (null removes the name)",
)
def put_product(
    sku: Code,
    body: Annotated[SkipValidation[ProductIn], Body()],
    container: ContainerDep,
    _: Writer,
) -> dict[str, Any]:
    product, position = container.catalog.name_product(sku, body)
    return {**product_out(sku, product), "position": position}


@router.get(
    "/products",
    response_model=ProductPage,
    responses=READ_ERRORS,
    summary="Find products by SKU prefix, barcode or name, in SKU order, a page at a time",
    description="A product matches when its SKU starts with `q` (case counts: SKUs are codes), "
    "when it holds the barcode `q` (a GTIN in any of its lengths), or when its name holds "
    "every word of `q`, ignoring case and accents (`cafe` finds `Café`). Without `q`, every "
    "product. From the products view: pass a write's `position` as `?after=` to include it.",
)
def list_products(
    container: ContainerDep,
    _: Reader,
    q: Annotated[
        str | None,
        Query(
            max_length=MAX_NAME_LENGTH,
            description="SKU prefix, barcode or words of the name.",
            json_schema_extra={"pattern": LINE_PATTERN},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    _after: ProductsAfter = None,
) -> dict[str, Any]:
    q = check_text(q, "q", max_length=MAX_NAME_LENGTH)
    after_sku = decode_cursor(cursor)
    rows = container.products.search_products(
        q,
        limit=limit + 1,
        after_sku=None if after_sku is None else check_code(after_sku, "cursor"),
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].sku)
    return {"items": [found_product_out(row) for row in rows], "next_cursor": next_cursor}


def found_product_out(row: ProductRow) -> dict[str, Any]:
    return {
        "sku": row.sku,
        "name": row.name,
        "barcodes": [{"code": display_barcode(key), "units": units} for key, units in row.barcodes],
    }


@router.get("/products/{sku}", response_model=ProductOut, responses=ERRORS)
def get_product(sku: Code, container: ContainerDep, _: Reader) -> dict[str, Any]:
    return product_out(sku, container.catalog.product(sku))
