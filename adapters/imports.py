"""Spreadsheet imports: preview a file (rows in error, what each stock becomes), then commit
every valid row in one transaction.

A preview stores the file as uploaded; a commit reads it again, so what is committed is exactly
what was previewed. Movement ids derive from the file's hash, the mode, the warehouse and the
row, so committing the same file with the same choices twice (even uploaded again as a new
import) records nothing twice: the second commit replays the first.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from adapters.import_store import ImportRecord, ImportStore
from adapters.spreadsheets import ParsedSheet, SheetRow, read_sheet
from ledger import ids
from ledger.application import LedgerApplication
from ledger.catalog import Catalog
from ledger.codes import check_code
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.movements import DEFAULT_WAREHOUSE, MovementRequest, MovementResult
from ledger.quantities import render
from ledger.stock import MovementKind

MAX_LISTED = 1_000  # errors and changes shown in a response; totals say how many there are
CHUNK = 5_000  # stocks read at once for a preview


class ImportHasErrors(Conflict):
    code = "import_has_errors"


class AlreadyCommitted(Conflict):
    code = "import_committed"


def import_movement_id(file_sha256: str, mode: str, warehouse: str, row: int) -> str:
    digest = hashlib.sha256(f"{file_sha256}\x1f{mode}\x1f{warehouse}\x1f{row}".encode())
    return f"import-{digest.hexdigest()[:40]}"


def _mode(value: object) -> str:
    if value not in ("add", "set"):
        raise InvalidInput('mode must be "add" or "set"', field="mode")
    return str(value)


class ImportDesk:
    def __init__(self, app: LedgerApplication, store: ImportStore, catalog: Catalog) -> None:
        self.app = app
        self.store = store
        self.catalog = catalog

    def preview(
        self,
        data: bytes,
        filename: str | None,
        mode: object,
        warehouse: object,
        created_by: str,
        progress: Callable[[int], None] | None = None,
    ) -> ImportRecord:
        mode = _mode(mode)
        warehouse = check_code(warehouse or DEFAULT_WAREHOUSE, "warehouse")
        sheet = read_sheet(
            data, filename, mode=mode, default_warehouse=warehouse, progress=progress
        )
        changes = self._changes(sheet, mode)
        summary = {
            "errors": [_error(e) for e in sheet.errors[:MAX_LISTED]],
            "errors_total": len(sheet.errors),
            "warnings": sheet.warnings,
            "changes": changes[:MAX_LISTED],
            "changes_total": len(changes),
            "columns": sheet.columns,
        }
        record = ImportRecord(
            import_id=secrets.token_hex(8),
            created_at=time.time(),
            created_by=created_by,
            filename=filename,
            file_sha256=hashlib.sha256(data).hexdigest(),
            mode=mode,
            warehouse=warehouse,
            status="previewed",
            total_rows=sheet.total_rows,
            valid_rows=len(sheet.rows),
            summary=summary,
        )
        self.store.add(record, data)
        return record

    def commit(
        self,
        import_id: str,
        skip_invalid: bool,
        committed_by: str,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[ImportRecord, list[MovementResult], int]:
        """Commit the import; its record, the movements recorded now, and how many of its
        rows were recorded before."""
        record = self.get(import_id)
        if record.summary["errors_total"] and not skip_invalid:
            raise ImportHasErrors(
                f"import {import_id} has {record.summary['errors_total']} row(s) in error: fix "
                'the file and upload it again, or commit with {"skip_invalid": true}',
                import_id=import_id,
                errors=record.summary["errors_total"],
            )
        sheet = read_sheet(
            self.store.file(import_id),
            record.filename,
            mode=record.mode,  # type: ignore[arg-type]
            default_warehouse=record.warehouse,
            progress=progress,
        )
        requests = [self._request(record, row) for row in sheet.rows]
        requests = [r for r in requests if r is not None]
        # Rows this file already recorded (committed before, maybe as another upload under
        # another name, so with another reference): recorded nothing twice, and not refused as
        # an id reused with another body. Looked up only when this file was ever committed.
        fresh = requests
        if self.store.file_was_committed(record.file_sha256):
            recorded = self.app.loader.load_many(
                [ids.movement_record_id(r.movement_id) for r in requests]
            )
            fresh = [r for r in requests if ids.movement_record_id(r.movement_id) not in recorded]
        self.store.committing(import_id)
        already = len(requests) - len(fresh)
        names = {row.sku: row.name for row in sheet.rows if row.name is not None}
        results = self.app.record_movements(fresh, committed_by) if fresh else []
        if names:
            self.catalog.name_products(names)
        position = max((r.position or 0 for r in results), default=0) or record.position
        if record.status != "committed":
            at = time.time()
            self.store.committed(import_id, committed_by, at, position)
            record = replace(
                record,
                status="committed",
                committed_at=at,
                committed_by=committed_by,
                position=position,
            )
        return record, results, already

    def get(self, import_id: str) -> ImportRecord:
        record = self.store.get(check_code(import_id, "import_id"))
        if record is None:
            raise NotFound(f"no import {import_id!r}", field="import_id")
        return record

    def newest(self, limit: int, before: float | None = None) -> list[ImportRecord]:
        return self.store.newest(limit, before)

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _request(record: ImportRecord, row: SheetRow) -> MovementRequest | None:
        counting = record.mode == "set"
        if not counting and row.quantity == 0:
            return None  # adds nothing: not a movement
        return MovementRequest(
            movement_id=import_movement_id(
                record.file_sha256, record.mode, record.warehouse, row.row
            ),
            sku=row.sku,
            warehouse=row.warehouse,
            kind=MovementKind.INVENTORY_COUNT if counting else MovementKind.SPREADSHEET,
            quantity=row.quantity,
            reference=f"{record.filename or 'spreadsheet'} row {row.row}"[:200],
        )

    def _changes(self, sheet: ParsedSheet, mode: str) -> list[dict[str, Any]]:
        """What each (SKU, warehouse)'s physical stock becomes, from the stocks as they are."""
        after: dict[tuple[str, str], Decimal] = {}
        added: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for row in sheet.rows:
            key = (row.sku, row.warehouse)
            if mode == "set":
                after[key] = row.quantity
            else:
                added[key] += row.quantity
        keys = sorted(after if mode == "set" else added)
        before = self._physical(keys)
        changes = []
        for key in keys:
            was = before.get(key, Decimal(0))
            becomes = after[key] if mode == "set" else was + added[key]
            changes.append(
                {
                    "sku": key[0],
                    "warehouse": key[1],
                    "physical_before": render(was),
                    "physical_after": render(becomes),
                }
            )
        return changes

    def _physical(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Decimal]:
        found: dict[tuple[str, str], Decimal] = {}
        for start in range(0, len(keys), CHUNK):
            chunk = {ids.stock_id(sku, wh): (sku, wh) for sku, wh in keys[start : start + CHUNK]}

            def read(stocks: dict[Any, Any], chunk: dict[Any, Any] = chunk) -> None:
                for stock_id, key in chunk.items():
                    if stock_id in stocks:
                        found[key] = stocks[stock_id].physical

            self.app.read_current(list(chunk), read)
        return found


def _error(error: Any) -> dict[str, Any]:
    return {"row": error.row, "column": error.column, "error": error.error, "detail": error.detail}
