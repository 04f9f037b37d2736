"""Stock spreadsheets read into rows: CSV dialects and encodings, XLSX cells, and the errors a
seller sees, naming the row and the column of their own file."""

from __future__ import annotations

import datetime
import io
import time
import zipfile
from collections.abc import Sequence
from decimal import Decimal

import pytest
import xlsxwriter

from adapters import spreadsheets
from adapters.spreadsheets import (
    ParsedSheet,
    RowError,
    SheetRow,
    SheetTooLarge,
    UnreadableSheet,
    read_sheet,
)
from ledger.errors import InvalidInput


def add(data: bytes, **options: object) -> ParsedSheet:
    return read_sheet(data, "stock.csv", mode="add", **options)  # type: ignore[arg-type]


def count(data: bytes, **options: object) -> ParsedSheet:
    return read_sheet(data, "stock.csv", mode="set", **options)  # type: ignore[arg-type]


def xlsx(rows: Sequence[Sequence[object]], *, first_row: int = 0) -> bytes:
    """A workbook whose first sheet holds ``rows`` from the 0-based row ``first_row`` on."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    date_format = book.add_format({"num_format": "dd/mm/yyyy"})
    for r, cells in enumerate(rows, start=first_row):
        for c, value in enumerate(cells):
            if isinstance(value, datetime.datetime):
                sheet.write_datetime(r, c, value, date_format)
            elif value is not None:
                sheet.write(r, c, value)
    book.close()
    return buffer.getvalue()


def as_excel_saves(data: bytes, written: str, saved: str) -> bytes:
    """The workbook with a number stored as Excel may store it: xlsxwriter writes 16
    significant digits (0.3), Excel up to 17 for a computed cell (0.30000000000000004)."""
    source, target = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(target, "w") as copy:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                old, new = f"<v>{written}</v>".encode(), f"<v>{saved}</v>".encode()
                assert old in content
                content = content.replace(old, new)
            copy.writestr(item, content)
    return target.getvalue()


def only(parsed: ParsedSheet) -> list[tuple[int, str, str, Decimal]]:
    assert parsed.errors == []
    return [(r.row, r.sku, r.warehouse, r.quantity) for r in parsed.rows]


# --- CSV dialects and encodings ---------------------------------------------------------------


def test_a_comma_separated_file() -> None:
    parsed = add(b"sku,warehouse,quantity\nA-1,main,3\nB-2,loja,-1.5\n")
    assert only(parsed) == [(2, "A-1", "main", Decimal(3)), (3, "B-2", "loja", Decimal("-1.5"))]
    assert parsed.total_rows == 2
    assert parsed.columns == {"sku": "sku", "warehouse": "warehouse", "quantity": "quantity"}


def test_a_semicolon_separated_file_with_decimal_commas() -> None:
    # Commas in every data row, semicolons between cells: the header tells which separates.
    parsed = add(b"codigo;qtd\r\nA-1;1,5\r\nB-2;2,25\r\n")
    assert only(parsed) == [(2, "A-1", "main", Decimal("1.5")), (3, "B-2", "main", Decimal("2.25"))]


def test_a_tab_separated_file() -> None:
    parsed = add(b"sku\tqty\nA-1\t4\n")
    assert only(parsed) == [(2, "A-1", "main", Decimal(4))]


def test_utf8_with_a_byte_order_mark() -> None:
    parsed = add("\ufeffSKU;Quantidade;Nome\nA-1;2;Camiseta Pequena\n".encode())
    assert only(parsed) == [(2, "A-1", "main", Decimal(2))]
    assert parsed.columns["sku"] == "SKU"
    assert parsed.rows[0].name == "Camiseta Pequena"


def test_windows_1252_with_accented_headers_and_a_decimal_comma() -> None:
    data = "Código;Depósito;Quantidade\nCAMISA-P;Loja Centro;1,5\n".encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # so the fallback is what read it
    parsed = add(data)
    assert only(parsed) == [(2, "CAMISA-P", "Loja Centro", Decimal("1.5"))]
    assert parsed.columns == {"sku": "Código", "warehouse": "Depósito", "quantity": "Quantidade"}


@pytest.mark.parametrize(
    ("header", "canonical"),
    [
        ("CÓDIGO DO PRODUTO", "sku"),
        ("product_code", "sku"),
        ("Cód.", "sku"),
        ("Qtd.", "quantity"),
        ("qtde", "quantity"),
        ("Estoque", "quantity"),
        ("Armazém", "warehouse"),
        ("Descrição", "name"),
    ],
)
def test_headers_are_matched_whatever_their_case_accents_and_separators(
    header: str, canonical: str
) -> None:
    headers = {"sku": "sku", "quantity": "quantity", canonical: header}
    values = {"sku": "A-1", "quantity": "1", "warehouse": "w", "name": "N"}
    line = ";".join(headers.values()) + "\n" + ";".join(values[c] for c in headers) + "\n"
    parsed = add(line.encode())
    assert parsed.columns[canonical] == header
    assert parsed.warnings == []
    assert only(parsed) == [(2, "A-1", "w" if canonical == "warehouse" else "main", Decimal(1))]


def test_brazilian_thousands_are_read_and_mixed_separators_refused() -> None:
    parsed = add(b"sku;qtd\nA;1.234,5\nB;1,234.5\nC;1,2,3\n")
    assert [(r.row, r.quantity) for r in parsed.rows] == [(2, Decimal("1234.5"))]
    assert [(e.row, e.column, e.error) for e in parsed.errors] == [
        (3, "qtd", "invalid_quantity"),
        (4, "qtd", "invalid_quantity"),
    ]


# --- XLSX -------------------------------------------------------------------------------------


def test_an_xlsx_workbook_with_numeric_skus_and_float_quantities() -> None:
    data = xlsx(
        [
            ["Código", "Quantidade", "Depósito"],
            [7891234567895, 0.3, "main"],
            ["A-1", 0.25, None],
            [42, 7, 101],
        ]
    )
    data = as_excel_saves(data, "0.25", "0.30000000000000004")
    parsed = read_sheet(data, "renamed.csv", mode="set")  # told by the content, not the name
    assert only(parsed) == [
        (2, "7891234567895", "main", Decimal("0.3")),
        (3, "A-1", "main", Decimal("0.3")),
        (4, "42", "101", Decimal(7)),
    ]
    assert str(parsed.rows[0].quantity) == "0.3"


def test_xlsx_rows_keep_the_sheets_own_numbers() -> None:
    data = xlsx([["sku", "qty"], ["A", 1], [], ["B", "x"]], first_row=2)
    parsed = add(data)
    assert [(r.row, r.sku) for r in parsed.rows] == [(4, "A")]
    assert [(e.row, e.column, e.error) for e in parsed.errors] == [(6, "qty", "invalid_quantity")]
    assert parsed.total_rows == 2


def test_a_code_excel_turned_into_a_date_is_refused() -> None:
    data = xlsx([["sku", "qty"], [datetime.datetime(2024, 3, 12), 1], [True, 1]])
    errors = add(data).errors
    assert [(e.row, e.error) for e in errors] == [(2, "invalid_sku"), (3, "invalid_sku")]
    assert "format the column as text" in errors[0].detail


# --- Files that are not stock sheets ----------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\n\n  \r\n", b"\xef\xbb\xbf", b";;;\n;;\n"])
def test_an_empty_file_is_unreadable(data: bytes) -> None:
    with pytest.raises(UnreadableSheet, match="empty"):
        add(data)


def test_an_empty_workbook_is_unreadable() -> None:
    with pytest.raises(UnreadableSheet, match="empty"):
        add(xlsx([]))


def test_a_header_alone_gives_no_rows() -> None:
    parsed = add(b"sku;quantidade\n\n")
    assert parsed == ParsedSheet([], [], [], 0, {"sku": "sku", "quantity": "quantidade"})


def test_a_file_without_a_quantity_column_is_unreadable() -> None:
    with pytest.raises(
        UnreadableSheet, match=r"has no quantity column \(a header such as"
    ) as raised:
        add(b"sku;preco\nA;10\n")
    assert "no sku" not in str(raised.value)
    assert raised.value.code == "unreadable_sheet"
    assert isinstance(raised.value, InvalidInput)  # the API answers 422


def test_a_file_without_either_column_names_both() -> None:
    with pytest.raises(UnreadableSheet, match=r"no sku column .* and no quantity column"):
        add(b"a;b\n1;2\n")


def test_two_columns_meaning_the_same_is_unreadable() -> None:
    with pytest.raises(UnreadableSheet, match="'Qtd' and 'Estoque'"):
        add(b"sku;Qtd;Estoque\nA;1;2\n")


def test_binary_garbage_is_unreadable() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
    with pytest.raises(UnreadableSheet, match="neither a CSV nor an XLSX"):
        read_sheet(png, "photo.png", mode="add")


def test_an_old_xls_workbook_is_unreadable_with_a_hint() -> None:
    with pytest.raises(UnreadableSheet, match="save it as XLSX or CSV"):
        add(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64)


def test_a_zip_that_is_not_a_workbook_is_unreadable() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "sku;qty\nA;1\n")
    with pytest.raises(UnreadableSheet, match="not an XLSX workbook"):
        add(buffer.getvalue())


def test_a_damaged_zip_is_unreadable() -> None:
    with pytest.raises(UnreadableSheet, match="damaged"):
        add(xlsx([["sku", "qty"], ["A", 1]])[:200])


# --- Limits -----------------------------------------------------------------------------------


def test_a_file_over_max_bytes_is_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"sku;qty\nA;1\n"
    monkeypatch.setattr(spreadsheets, "MAX_BYTES", len(data))
    assert add(data).total_rows == 1
    with pytest.raises(SheetTooLarge) as raised:
        add(data + b"B;2\n")
    assert raised.value.code == "sheet_too_large"
    assert not isinstance(raised.value, InvalidInput)  # 413, not 422


def test_a_file_over_max_rows_is_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spreadsheets, "MAX_ROWS", 3)
    # Blank lines do not count.
    assert add(b"sku;qty\nA;1\n\nB;1\n;;\nC;1\n").total_rows == 3
    with pytest.raises(SheetTooLarge, match="more than 3 rows"):
        add(b"sku;qty\nA;1\nB;1\nC;1\nD;1\n")
    with pytest.raises(SheetTooLarge, match="more than 3 rows"):
        add(xlsx([["sku", "qty"], ["A", 1], ["B", 1], ["C", 1], ["D", 1]]))


def test_a_workbook_that_unpacks_too_large_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    data = xlsx([["sku", "qty"], ["A", 1]])
    assert add(data).total_rows == 1
    monkeypatch.setattr(spreadsheets, "MAX_UNPACKED_BYTES", 1_000)
    with pytest.raises(SheetTooLarge, match="unpacks to"):
        add(data)


def test_progress_is_reported_every_thousand_rows() -> None:
    seen: list[int] = []
    body = "".join(f"S{i};1\n" for i in range(2_500))
    add(f"sku;qty\n{body}".encode(), progress=seen.append)
    assert seen == [1_000, 2_000]


# --- Rows refused, with their row and column --------------------------------------------------


def test_a_quantity_that_is_not_a_number_names_its_row_and_column() -> None:
    parsed = add(b"Codigo;Qtd\nA;1\nB;dez\nC;1.0000001\n")
    assert [r.sku for r in parsed.rows] == ["A"]
    assert [(e.row, e.column, e.error) for e in parsed.errors] == [
        (3, "Qtd", "invalid_quantity"),
        (4, "Qtd", "invalid_quantity"),
    ]
    assert parsed.errors[0].detail.startswith("Row 3, column 'Qtd': ")
    assert "'dez'" in parsed.errors[0].detail


@pytest.mark.parametrize("sku", ["..", ".", "A\x01B", "X" * 65])
def test_a_sku_the_ledger_refuses_names_its_row_and_column(sku: str) -> None:
    parsed = add(f"SKU;qty\nOK;1\n{sku};1\n".encode())
    assert [r.sku for r in parsed.rows] == ["OK"]
    [error] = parsed.errors
    assert (error.row, error.column, error.error) == (3, "SKU", "invalid_sku")
    assert error.detail.startswith("Row 3, column 'SKU': sku ")


def test_a_warehouse_the_ledger_refuses_is_an_error() -> None:
    parsed = add(b"sku;deposito;qty\nA;..;1\n")
    assert parsed.rows == []
    assert [(e.row, e.column, e.error) for e in parsed.errors] == [
        (2, "deposito", "invalid_warehouse")
    ]


def test_empty_cells() -> None:
    parsed = add(b"sku;deposito;qty\n;w;1\nA;;2\nB;w;\nC\n", default_warehouse="loja")
    assert parsed.rows == [SheetRow(3, "A", "loja", Decimal(2), None)]
    assert [(e.row, e.column, e.error) for e in parsed.errors] == [
        (2, "sku", "missing_value"),
        (4, "qty", "missing_value"),
        (5, "qty", "missing_value"),
    ]


def test_spaces_around_codes_are_dropped() -> None:
    assert only(add(b"sku, qty\n A-1 , 2 \n")) == [(2, "A-1", "main", Decimal(2))]


def test_an_invalid_default_warehouse_is_the_requests_fault() -> None:
    with pytest.raises(InvalidInput) as raised:
        add(b"sku;qty\nA;1\n", default_warehouse="..")
    assert not isinstance(raised.value, UnreadableSheet)


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(InvalidInput, match="mode"):
        read_sheet(b"sku;qty\nA;1\n", None, mode="replace")  # type: ignore[arg-type]


# --- Modes ------------------------------------------------------------------------------------


def test_set_mode_refuses_a_second_row_for_the_same_sku_and_warehouse() -> None:
    parsed = count(b"sku;deposito;qty\nA;w;1\nA;x;2\nB;w;3\nA;w;4\n")
    assert [(r.row, r.sku, r.warehouse) for r in parsed.rows] == [
        (2, "A", "w"),
        (3, "A", "x"),
        (4, "B", "w"),
    ]
    [error] = parsed.errors
    assert (error.row, error.column, error.error) == (5, "sku", "duplicate_row")
    assert "Row 5" in error.detail
    assert "row 2" in error.detail


def test_add_mode_returns_every_row_for_the_caller_to_sum() -> None:
    parsed = add(b"sku;qty\nA;1\nA;2,5\nA;0\n")
    assert only(parsed) == [
        (2, "A", "main", Decimal(1)),
        (3, "A", "main", Decimal("2.5")),
        (4, "A", "main", Decimal(0)),
    ]


def test_set_mode_refuses_a_negative_level_and_add_mode_takes_it() -> None:
    data = b"sku;qty\nA;-1\nB;0\n"
    parsed = count(data)
    assert [(r.sku, r.quantity) for r in parsed.rows] == [("B", Decimal(0))]
    assert parsed.errors == [
        RowError(2, "qty", "invalid_quantity", parsed.errors[0].detail),
    ]
    assert "negative" in parsed.errors[0].detail
    assert [r.quantity for r in add(data).rows] == [Decimal(-1), Decimal(0)]


# --- Layout -----------------------------------------------------------------------------------


def test_blank_lines_are_skipped_and_rows_keep_the_files_numbers() -> None:
    parsed = add(b"\n\nsku;qty\nA;1\n\n  ;  \nB;2\n")
    assert [(r.row, r.sku) for r in parsed.rows] == [(4, "A"), (7, "B")]
    assert parsed.total_rows == 2


def test_a_quoted_cell_spanning_two_lines_is_one_row() -> None:
    parsed = add(b'sku;nome;qty\nA;"two\nlines";1\nB;;x\nC;"one ""line""";1\n')
    # A name is one line (the ledger's rule), but the row count is right after it.
    assert [(e.row, e.error) for e in parsed.errors] == [
        (2, "invalid_name"),
        (3, "invalid_quantity"),
    ]
    assert [(r.row, r.name) for r in parsed.rows] == [(4, 'one "line"')]


def test_the_name_column_is_read() -> None:
    parsed = add("sku;descrição;qty\nA;Camiseta Azul;1\nB;;1\nC;\x07;1\n".encode())
    assert [(r.sku, r.name) for r in parsed.rows] == [("A", "Camiseta Azul"), ("B", None)]
    assert [(e.row, e.column, e.error) for e in parsed.errors] == [(4, "descrição", "invalid_name")]
    assert parsed.columns["name"] == "descrição"


def test_unknown_columns_are_ignored_with_a_warning() -> None:
    parsed = add(b"sku;Cor;qty;;\nA;azul;1;;\nB;;2;x\n")
    assert only(parsed) == [(2, "A", "main", Decimal(1)), (3, "B", "main", Decimal(2))]
    assert parsed.warnings == [
        "column 'Cor' is not used and was ignored",
        "column D has no header; its values were ignored",
    ]


# --- Time on a large sheet (printed, not asserted: the machine's load varies) -----------------


def test_fifty_thousand_rows_of_xlsx_and_csv(capsys: pytest.CaptureFixture[str]) -> None:
    n = 50_000
    rows = [["Código", "Depósito", "Quantidade", "Nome"]]
    rows += [[7890000000000 + i, "main", (i % 97) / 10, f"Produto {i}"] for i in range(n)]
    workbook = xlsx(rows)
    text = "".join(f"{r[0]};{r[1]};{str(r[2]).replace('.', ',')};{r[3]}\n" for r in rows)

    for label, data in (("XLSX", workbook), ("CSV", text.encode("cp1252"))):
        started = time.perf_counter()
        parsed = read_sheet(data, None, mode="set")
        elapsed = time.perf_counter() - started
        assert parsed.total_rows == n
        assert parsed.errors == []
        assert parsed.rows[-1] == SheetRow(
            n + 1, str(7890000000000 + n - 1), "main", Decimal(str(rows[-1][2])), f"Produto {n - 1}"
        )
        with capsys.disabled():
            print(f"\n{n:,} rows of {label} ({len(data):,} bytes) read in {elapsed:.2f} s")
