"""Stock spreadsheets (CSV or XLSX) read into checked rows: no HTTP, no database.

Sellers keep stock in spreadsheets written by hand, exported from an ERP or from Excel in
Portuguese: headers come in either language, with or without accents (``Código``, ``qtd``,
``Depósito``), quantities with decimal commas (``1,5``), CSV files separated by ``;`` (what a
Brazilian Excel writes) and encoded in Windows-1252. This module turns such a file into rows the
ledger can record, and into errors that name the row and the column as the user sees them in
their spreadsheet, so they can fix the file and send it again.

Codes, names and quantities are checked by the ledger's own rules (``ledger.codes``,
``ledger.quantities``): a row accepted here is one the ledger accepts.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from python_calamine import CalamineWorkbook

from ledger.codes import check_code, check_text
from ledger.errors import InvalidInput, TooLarge
from ledger.quantities import parse_quantity

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
# An XLSX file is a zip: 20 MiB of it may unpack to gigabytes of XML (a "zip bomb"), which the
# XLSX reader would hold in memory before any row could be counted. The sizes the archive
# declares are checked first; 100,000 real rows unpack to far less than this.
MAX_UNPACKED_BYTES = 320 * 1024 * 1024
MAX_NAME_LENGTH = 200
PROGRESS_EVERY = 1_000

Mode = Literal["add", "set"]
Cell = object  # str from CSV; str, int, float, bool, date, time or timedelta from XLSX

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls format (and other Office 97 files)

# Header synonyms, written as _header_key leaves them: lower case, no accents, single spaces.
# "estoque" and "saldo" are the stock *quantity* in Portuguese, never a warehouse.
_SYNONYMS: dict[str, frozenset[str]] = {
    "sku": frozenset(
        {"sku", "codigo", "cod", "codigo sku", "code", "product code", "codigo do produto"}
    ),
    "warehouse": frozenset({"warehouse", "deposito", "armazem", "local"}),
    "quantity": frozenset({"quantity", "qty", "quantidade", "qtd", "qtde", "estoque", "saldo"}),
    "name": frozenset({"name", "nome", "descricao", "description", "produto", "product"}),
}
_CANONICAL = {synonym: canonical for canonical, words in _SYNONYMS.items() for synonym in words}
_EXAMPLES = {
    "sku": "'código' or 'sku'",
    "quantity": "'quantidade', 'qtd' or 'quantity'",
}
# Separators people put in headers ("Qtd.", "product_code", "Cód-Produto") read as spaces.
_HEADER_SEPARATORS = str.maketrans({"_": " ", "-": " ", ".": " ", ":": " "})
# Brazilian thousands: dots between groups of three digits, the comma last ("1.234,5"). Only
# this exact shape is read, so a malformed number is refused instead of guessed at.
_BRAZILIAN_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+,\d+")


class SheetTooLarge(TooLarge):
    """The file is over MAX_BYTES or MAX_ROWS: the HTTP layer answers 413."""

    code = "sheet_too_large"


class UnreadableSheet(InvalidInput):
    """Not a CSV or XLSX file, empty, or without a SKU or quantity column (422): the message
    says which, in a sentence meant for the person who sent the file."""

    code = "unreadable_sheet"


@dataclass(frozen=True, slots=True)
class SheetRow:
    row: int  # the spreadsheet's own row number, 1-based: the header is usually row 1
    sku: str
    warehouse: str
    quantity: Decimal
    name: str | None


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    column: str  # the header as written in the file (the canonical name if there is none)
    error: str  # machine code: invalid_sku, invalid_quantity, missing_value, duplicate_row...
    detail: str  # a sentence naming the row and the column


@dataclass(frozen=True, slots=True)
class ParsedSheet:
    rows: list[SheetRow]  # valid rows only, in file order
    errors: list[RowError]
    warnings: list[str]
    total_rows: int  # data rows, blank lines excluded
    columns: dict[str, str]  # canonical -> header as written


def read_sheet(
    data: bytes,
    filename: str | None,
    *,
    mode: Mode,
    default_warehouse: str = "main",
    progress: Callable[[int], None] | None = None,
) -> ParsedSheet:
    """Read a stock sheet: in ``add`` mode quantities are changes (rows of one SKU and
    warehouse are all returned, for the caller to add up), in ``set`` mode counted levels (not
    negative, and one row per SKU and warehouse).

    ``filename`` only words the messages: the format is told by the content, since files are
    renamed and browsers send whatever name they have. ``progress(n)`` is called every
    PROGRESS_EVERY data rows. Raises SheetTooLarge, UnreadableSheet, or InvalidInput for a bad
    ``mode`` or ``default_warehouse`` (the request's fault, not the file's).
    """
    if mode not in ("add", "set"):
        raise InvalidInput(f"mode must be 'add' or 'set', not {mode!r}", field="mode")
    default_warehouse = check_code(default_warehouse, "warehouse")
    if len(data) > MAX_BYTES:
        raise SheetTooLarge(
            f"the file has {len(data):,} bytes; at most {MAX_BYTES:,} are accepted",
            limit_bytes=MAX_BYTES,
        )
    if not data.strip():
        raise UnreadableSheet(f"{_called(filename)} is empty")
    if data.startswith(_ZIP_MAGIC):
        records = _workbook_rows(data, filename)
    else:
        records = _csv_rows(data, filename)
    return _parse(records, filename, mode, default_warehouse, progress)


# --- Reading the file into (row number, cells) --------------------------------------------


def _called(filename: str | None) -> str:
    return f"the file {filename!r}" if filename else "the file"


def _workbook_rows(data: bytes, filename: str | None) -> Iterable[tuple[int, Sequence[Cell]]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as error:
        raise UnreadableSheet(f"{_called(filename)} is a damaged zip or XLSX file") from error
    if unpacked > MAX_UNPACKED_BYTES:
        raise SheetTooLarge(
            f"{_called(filename)} unpacks to {unpacked:,} bytes; at most "
            f"{MAX_UNPACKED_BYTES:,} are accepted",
            limit_bytes=MAX_UNPACKED_BYTES,
        )
    try:
        with CalamineWorkbook.from_filelike(io.BytesIO(data)) as book:
            # skip_empty_area=False keeps the leading empty rows, so a row's index is its
            # number in the spreadsheet (minus one) however far down the table starts.
            rows = book.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except Exception as error:  # whatever the reader raises, the workbook cannot be read
        raise UnreadableSheet(
            f"{_called(filename)} is a zip file but not an XLSX workbook that can be read"
        ) from error
    return enumerate(rows, start=1)


def _csv_rows(data: bytes, filename: str | None) -> Iterator[tuple[int, Sequence[Cell]]]:
    # A text file holds no NUL byte; images, PDFs, old .xls files and UTF-16 text all do.
    if b"\x00" in data:
        hint = " (old .xls workbooks are not read: save it as XLSX or CSV)"
        raise UnreadableSheet(
            f"{_called(filename)} is neither a CSV nor an XLSX file"
            + (hint if data.startswith(_OLE_MAGIC) else "")
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # What Excel writes on a Portuguese Windows. It maps every byte but five, so a file
        # that fails here is not text at all.
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise UnreadableSheet(
                f"{_called(filename)} is neither a CSV nor an XLSX file (nor UTF-8 or "
                "Windows-1252 text)"
            ) from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    # Records, not lines, are numbered: a quoted cell spanning two lines is one spreadsheet row.
    row = 0
    try:
        for row, cells in enumerate(reader, start=1):
            yield row, cells
    except csv.Error as error:
        raise UnreadableSheet(
            f"{_called(filename)} cannot be read as CSV at row {row + 1}: {error}"
        ) from error


def _delimiter(text: str) -> str:
    """The separator that splits the header line into the most cells.

    The header is where the separator is unambiguous: csv.Sniffer weighs every line, and data
    full of decimal commas (``A;1,5``) can make it prefer ',' over ';'. On a tie ';' wins, as
    the separator of a Brazilian Excel.
    """
    # newline=None: lines may end in \r\n, \n or (old Macs) a lone \r.
    header = next((line for line in io.StringIO(text, newline=None) if line.strip()), "")
    best, most = ";", 0
    for candidate in (";", ",", "\t"):
        try:
            cells = next(csv.reader([header], delimiter=candidate), [])
        except csv.Error:  # a quote left open: the reader proper will say where
            continue
        if len(cells) > most:
            best, most = candidate, len(cells)
    return best


# --- From cells to rows ---------------------------------------------------------------------


def _parse(
    records: Iterable[tuple[int, Sequence[Cell]]],
    filename: str | None,
    mode: Mode,
    default_warehouse: str,
    progress: Callable[[int], None] | None,
) -> ParsedSheet:
    records = iter(records)
    header = next((cells for _, cells in records if not _is_blank(cells)), None)
    if header is None:
        raise UnreadableSheet(f"{_called(filename)} is empty: it has no header row")
    columns, index, warnings, unnamed = _columns(header)
    missing = [canonical for canonical in ("sku", "quantity") if canonical not in index]
    if missing:
        raise UnreadableSheet(
            f"{_called(filename)} has no "
            + " and no ".join(f"{c} column (a header such as {_EXAMPLES[c]})" for c in missing)
        )

    sku_at, quantity_at = index["sku"], index["quantity"]
    warehouse_at, name_at = index.get("warehouse"), index.get("name")
    sku_header, quantity_header = columns["sku"], columns["quantity"]
    warehouse_header = columns.get("warehouse", "warehouse")
    name_header = columns.get("name", "name")
    width = len(header)
    counting = mode == "set"

    rows: list[SheetRow] = []
    errors: list[RowError] = []
    first_row_of: dict[tuple[str, str], int] = {}  # set mode: (sku, warehouse) -> row
    ignored_values: set[int] = set()  # columns without a header that hold values
    total = 0

    for row, cells in records:
        if _is_blank(cells):
            continue
        total += 1
        if total > MAX_ROWS:
            raise SheetTooLarge(
                f"{_called(filename)} has more than {MAX_ROWS:,} rows; split it into smaller files",
                limit_rows=MAX_ROWS,
            )
        if progress is not None and total % PROGRESS_EVERY == 0:
            progress(total)
        count = len(cells)
        if unnamed or count > width:
            ignored_values.update(
                i for i in (*unnamed, *range(width, count)) if i < count and not _empty(cells[i])
            )
        row_errors = len(errors)

        sku = _code(cells[sku_at] if sku_at < count else "", "sku")
        if sku == "":
            errors.append(_missing(row, sku_header, "a SKU"))
        elif isinstance(sku, _Problem):
            errors.append(sku.error(row, sku_header))
        warehouse = default_warehouse
        if warehouse_at is not None and warehouse_at < count:
            warehouse = _code(cells[warehouse_at], "warehouse") or default_warehouse
            if isinstance(warehouse, _Problem):
                errors.append(warehouse.error(row, warehouse_header))
        quantity = _quantity(cells[quantity_at] if quantity_at < count else "", counting)
        if quantity is None:
            errors.append(_missing(row, quantity_header, "a quantity"))
        elif isinstance(quantity, _Problem):
            errors.append(quantity.error(row, quantity_header))
        name = None
        if name_at is not None and name_at < count:
            name = _name(cells[name_at])
            if isinstance(name, _Problem):
                errors.append(name.error(row, name_header))
        if counting and type(sku) is str and sku and type(warehouse) is str:
            # Even a row refused for its quantity claims its SKU: fixing that row must not
            # turn a later one into the duplicate.
            first = first_row_of.setdefault((sku, warehouse), row)
            if first != row:
                errors.append(
                    RowError(
                        row,
                        sku_header,
                        "duplicate_row",
                        f"Row {row} repeats SKU {sku!r} in warehouse {warehouse!r} from row "
                        f"{first}: a count gives each SKU and warehouse one row",
                    )
                )
        if len(errors) == row_errors:
            rows.append(SheetRow(row, sku, warehouse, quantity, name))  # type: ignore[arg-type]

    for i in sorted(ignored_values):
        warnings.append(f"column {_letter(i)} has no header; its values were ignored")
    return ParsedSheet(rows, errors, warnings, total, columns)


def _columns(
    header: Sequence[Cell],
) -> tuple[dict[str, str], dict[str, int], list[str], tuple[int, ...]]:
    """(canonical -> header as written, canonical -> index, warnings, unnamed columns)."""
    written: dict[str, str] = {}
    index: dict[str, int] = {}
    warnings: list[str] = []
    unnamed: list[int] = []
    for i, cell in enumerate(header):
        text = _plain_text(cell)
        if not text:
            unnamed.append(i)
            continue
        canonical = _CANONICAL.get(_header_key(text))
        if canonical is None:
            warnings.append(f"column {text!r} is not used and was ignored")
        elif canonical in written:
            raise UnreadableSheet(
                f"the columns {written[canonical]!r} and {text!r} both name the {canonical}; "
                "keep one of them"
            )
        else:
            written[canonical], index[canonical] = text, i
    return written, index, warnings, tuple(unnamed)


def _header_key(text: str) -> str:
    """'Código do Produto', 'codigo_do_produto' and 'CODIGO  DO PRODUTO' read alike."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().translate(_HEADER_SEPARATORS).split())


def _letter(index: int) -> str:
    """A column's letter, as a spreadsheet shows it (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


# --- Cells ----------------------------------------------------------------------------------
# On the valid path no exception is raised: a problem is returned as a value, and an empty
# cell as "" (or None for a quantity), so a 100,000-row sheet costs no traceback objects.


@dataclass(frozen=True, slots=True)
class _Problem:
    code: str
    message: str

    def error(self, row: int, column: str) -> RowError:
        return RowError(row, column, self.code, f"Row {row}, column {column!r}: {self.message}")


def _missing(row: int, column: str, what: str) -> RowError:
    return RowError(row, column, "missing_value", f"Row {row}, column {column!r}: {what} is needed")


def _empty(cell: Cell) -> bool:
    if isinstance(cell, str):
        return not cell or cell.isspace()
    return cell is None


def _is_blank(cells: Sequence[Cell]) -> bool:
    return all(_empty(cell) for cell in cells)


def _float_text(value: float) -> str:
    """A float as the person typed it: XLSX stores every number as a float, so the SKU
    7891234567895 arrives as 7891234567895.0 and 0.3 may come back as 0.30000000000000004.
    Fifteen significant digits are what Excel itself shows."""
    if value.is_integer():
        return str(int(value))
    return format(value, ".15g")


def _plain_text(cell: Cell) -> str:
    if isinstance(cell, str):
        return cell.strip()
    if isinstance(cell, float):
        return _float_text(cell)
    return "" if cell is None else str(cell)


def _code(cell: Cell, field: str) -> str | _Problem:
    """A SKU or warehouse code; "" when the cell is empty."""
    if isinstance(cell, str):
        # Spaces around a code are never part of it (the ledger refuses them) and cannot be
        # seen in a spreadsheet: they are dropped rather than refused.
        text = cell.strip()
    elif isinstance(cell, float):
        text = _float_text(cell)
    elif isinstance(cell, int) and not isinstance(cell, bool):
        text = str(cell)
    elif cell is None:
        return ""
    else:
        # A boolean, or a date: Excel turns codes such as "3-12" into dates as they are typed.
        return _Problem(
            f"invalid_{field}", f"the cell holds {cell!r}, not a code (format the column as text)"
        )
    if not text:
        return ""
    try:
        return check_code(text, field)
    except InvalidInput as error:
        return _Problem(f"invalid_{field}", error.detail)


def _quantity(cell: Cell, counting: bool) -> Decimal | _Problem | None:
    """An exact quantity; None when the cell is empty. Counted levels cannot be negative."""
    value: str | int | Decimal
    if isinstance(cell, str):
        value = cell.strip()
        if not value:
            return None
        if "," in value:
            if "." not in value:
                value = value.replace(",", ".")  # the Brazilian decimal comma: 1,5
            elif _BRAZILIAN_THOUSANDS.fullmatch(value):
                value = value.replace(".", "").replace(",", ".")  # 1.234,5
    elif isinstance(cell, float):
        value = Decimal(_float_text(cell))
    elif isinstance(cell, int) and not isinstance(cell, bool):
        value = cell
    elif cell is None:
        return None
    else:
        return _Problem("invalid_quantity", f"the cell holds {cell!r}, not a number")
    try:
        quantity = parse_quantity(value, "quantity")
    except InvalidInput as error:
        return _Problem("invalid_quantity", error.detail)
    if counting and quantity < 0:
        return _Problem("invalid_quantity", f"a counted level cannot be negative (got {quantity})")
    return quantity


def _name(cell: Cell) -> str | _Problem | None:
    text = _plain_text(cell)
    if not text:
        return None
    try:
        return check_text(text, "name", max_length=MAX_NAME_LENGTH)
    except InvalidInput as error:
        return _Problem("invalid_name", error.detail)
