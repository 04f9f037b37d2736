"""Finding products (GET /products?q=) through the real server, on SQLite and PostgreSQL: by
name without caring for case or accents, by SKU prefix, by barcode in any GTIN length, a page
at a time, and current after a rename or a barcode removed."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import Server

GTIN_13 = "4006381333931"
GTIN_14 = "04006381333931"  # the same barcode as a GTIN-14


def skus(client: httpx.Client, q: str, **params: object) -> list[str]:
    response = client.get("/products", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return [item["sku"] for item in response.json()["items"]]


def test_products_are_found_by_name_sku_prefix_and_barcode(server: Server) -> None:
    with server.client() as admin:
        for sku, name in (
            ("CAF-500", "Café Torrado 500g"),
            ("CAF-250", "Café em grãos 250g"),
            ("X_1", "Blend 100% arábica"),
            ("XA1", "Blend 100 gramas"),
        ):
            assert admin.put(f"/products/{sku}", json={"name": name}).status_code == 200
        given = admin.put(f"/barcodes/{GTIN_13}", json={"sku": "CAF-500"})
        assert given.status_code == 201, given.text
        after = given.json()["position"]
        reader_token = admin.post("/tokens", json={"name": "r", "permissions": ["read"]}).json()[
            "token"
        ]

    with server.client(reader_token) as reader:
        page = reader.get("/products", params={"q": "cafe", "after": after})
        assert page.status_code == 200, page.text
        assert page.json() == {
            "items": [
                {"sku": "CAF-250", "name": "Café em grãos 250g", "barcodes": []},
                {
                    "sku": "CAF-500",
                    "name": "Café Torrado 500g",
                    "barcodes": [{"code": GTIN_13, "units": 1}],
                },
            ],
            "next_cursor": None,
        }
        assert skus(reader, "TORRADO") == ["CAF-500"]
        assert skus(reader, "CAF-5") == ["CAF-500"]
        assert skus(reader, GTIN_13) == ["CAF-500"]
        assert skus(reader, GTIN_14) == ["CAF-500"]
        # "%" and "_" are themselves, never wildcards.
        assert skus(reader, "X_") == ["X_1"]
        assert skus(reader, "X%") == []
        assert skus(reader, "100%") == ["X_1"]
        assert skus(reader, "c_fe") == []
        # Pages in SKU order, by an opaque cursor.
        seen, cursor = [], None
        while True:
            params = {"q": "", "limit": 3} | ({"cursor": cursor} if cursor else {})
            page = reader.get("/products", params=params).json()
            seen += [item["sku"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ["CAF-250", "CAF-500", "XA1", "X_1"]
        bad = reader.get("/products", params={"q": "café\x00"})
        assert (bad.status_code, bad.json()["field"]) == (422, "q")
        bad = reader.get("/products", params={"cursor": "not one of ours!"})
        assert (bad.status_code, bad.json()["field"]) == (422, "cursor")
        assert httpx.get(f"{server.url}/products").status_code == 401

    with server.client() as admin:
        # A rename and a barcode's removal give their positions, so a search can wait for them
        # (?after=) instead of polling.
        renamed = admin.put("/products/CAF-500", json={"name": "Café Extraforte 500g"})
        assert renamed.status_code == 200
        assert renamed.json()["name"] == "Café Extraforte 500g"
        assert renamed.json()["position"] > after
        assert skus(admin, "torrado", after=renamed.json()["position"]) == []
        assert skus(admin, "extraforte") == ["CAF-500"]
        # The same name again records nothing and has no position.
        again = admin.put("/products/CAF-500", json={"name": "Café Extraforte 500g"})
        assert (again.status_code, again.json()["position"]) == (200, None)
        removed = admin.delete(f"/barcodes/{GTIN_13}")
        assert removed.status_code == 204
        removal = int(removed.headers["X-Ledger-Position"])
        assert removal > renamed.json()["position"]
        assert skus(admin, GTIN_14, after=removal) == []
        [item] = admin.get("/products", params={"q": "CAF-500"}).json()["items"]
        assert item == {"sku": "CAF-500", "name": "Café Extraforte 500g", "barcodes": []}
