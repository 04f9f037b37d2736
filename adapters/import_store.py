"""The ``spreadsheet_imports`` table (migration 0010): uploaded files, their previews, commits."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ImportRecord:
    import_id: str
    created_at: float
    created_by: str
    filename: str | None
    file_sha256: str
    mode: str
    warehouse: str
    status: str
    total_rows: int
    valid_rows: int
    summary: dict[str, Any]
    committed_at: float | None = None
    committed_by: str | None = None
    position: int | None = None


_COLUMNS = (
    "import_id, created_at, created_by, filename, file_sha256, mode, warehouse, status, "
    "total_rows, valid_rows, summary, committed_at, committed_by, position"
)


class ImportStore:
    def __init__(self, datastore: Any, is_postgres: bool) -> None:
        self.datastore = datastore
        self.is_postgres = is_postgres

    def _q(self, sql: str) -> str:
        if not self.is_postgres:
            return sql
        table = f'"{self.datastore.schema}"."spreadsheet_imports"'
        return re.sub(r"\bspreadsheet_imports\b", table, sql).replace("?", "%s")

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as c:
            yield c

    def add(self, record: ImportRecord, file: bytes) -> None:
        with self._tx() as c:
            c.execute(
                self._q(
                    f"INSERT INTO spreadsheet_imports ({_COLUMNS}, file) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                (
                    record.import_id,
                    record.created_at,
                    record.created_by,
                    record.filename,
                    record.file_sha256,
                    record.mode,
                    record.warehouse,
                    record.status,
                    record.total_rows,
                    record.valid_rows,
                    json.dumps(record.summary),
                    None,
                    None,
                    None,
                    file,
                ),
            )

    def get(self, import_id: str) -> ImportRecord | None:
        with self._tx() as c:
            c.execute(
                self._q(f"SELECT {_COLUMNS} FROM spreadsheet_imports WHERE import_id = ?"),
                (import_id,),
            )
            row = c.fetchone()
        return None if row is None else self._record(row)

    def file(self, import_id: str) -> bytes:
        with self._tx() as c:
            c.execute(
                self._q("SELECT file FROM spreadsheet_imports WHERE import_id = ?"), (import_id,)
            )
            return bytes(c.fetchone()["file"])

    def newest(self, limit: int, before: float | None = None) -> list[ImportRecord]:
        with self._tx() as c:
            c.execute(
                self._q(
                    f"SELECT {_COLUMNS} FROM spreadsheet_imports WHERE created_at < ? "
                    "ORDER BY created_at DESC LIMIT ?"
                ),
                (float("inf") if before is None else before, limit),
            )
            return [self._record(row) for row in c.fetchall()]

    def file_was_committed(self, file_sha256: str) -> bool:
        """Whether some import of this very file was committed (or began committing)."""
        with self._tx() as c:
            c.execute(
                self._q(
                    "SELECT 1 AS found FROM spreadsheet_imports WHERE file_sha256 = ? "
                    "AND status <> 'previewed' LIMIT 1"
                ),
                (file_sha256,),
            )
            return c.fetchone() is not None

    def committing(self, import_id: str) -> None:
        """Marks the import as being committed, before its movements are recorded: a commit
        that dies half way is then known, and the next one checks what was recorded."""
        with self._tx() as c:
            c.execute(
                self._q(
                    "UPDATE spreadsheet_imports SET status = 'committing' "
                    "WHERE import_id = ? AND status = 'previewed'"
                ),
                (import_id,),
            )

    def committed(self, import_id: str, by: str, at: float, position: int | None) -> None:
        with self._tx() as c:
            c.execute(
                self._q(
                    "UPDATE spreadsheet_imports SET status = 'committed', committed_at = ?, "
                    "committed_by = ?, position = ? WHERE import_id = ?"
                ),
                (at, by, position, import_id),
            )

    @staticmethod
    def _record(row: Any) -> ImportRecord:
        data = dict(row)
        data["summary"] = json.loads(data["summary"])
        return ImportRecord(**data)
