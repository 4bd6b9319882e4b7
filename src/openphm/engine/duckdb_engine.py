"""The embedded default: DuckDB, with the whole store in one ``.duckdb`` file."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import duckdb
import narwhals as nw
import pyarrow as pa
from duckdb.func import PythonUDFType

from openphm.engine.base import ROW, Engine, HashBatch
from openphm.errors import OutOfMemoryError


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


MEMORY_ENV = "OPENPHM_DUCKDB_MEMORY"
DEFAULT_MEMORY = "5GB"
"""DuckDB's buffer limit unless ``OPENPHM_DUCKDB_MEMORY`` sets another. DuckDB's own default (80% of the machine)
let a 1M-person run reach 7.6 GB; with 5 GB it spills joins, sorts and temporary tables to disk instead and the
whole process peaked at 5.2 GB (docs/performance.md). Raise it for populations of several million."""


@contextmanager
def _memory_guard(doing: str) -> Iterator[None]:
    """DuckDB's out-of-memory error as one line that says which setting to raise (no traceback)."""
    try:
        yield
    except duckdb.OutOfMemoryException:
        limit = os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY
        raise OutOfMemoryError(
            f"DuckDB ran out of its {limit} memory limit while {doing}: set {MEMORY_ENV} to a larger limit "
            "(it must stay below the machine's memory) and run again"
        ) from None


class DuckDBEngine(Engine):
    name: ClassVar[str] = "duckdb"
    store_format: ClassVar[str] = "duckdb"

    def __init__(self, location: Path, *, read_only: bool = False) -> None:
        super().__init__(location)
        self._spill = tempfile.TemporaryDirectory(prefix="openphm-duckdb-")
        self.con = duckdb.connect(str(location), read_only=read_only)
        self._read_only = read_only
        # Spill to a private temporary folder rather than beside the store, so a failed run leaves
        # nothing next to the published file.
        self.con.execute(f"SET temp_directory = {_literal(self._spill.name)}")
        self.con.execute(f"SET memory_limit = {_literal(os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY)}")
        # Off unless CSV is read (see read_csv): keeping insertion order makes DuckDB hold results it could
        # otherwise stream or spill, and a 10M-person run ran out of its 5 GB with it on. No stage relies on
        # row order: every output that must be ordered is sorted.
        self.con.execute("SET preserve_insertion_order = false")
        self._names = itertools.count()
        self._functions: list[str] = []
        self._persisted: list[str] = []
        self._attached: dict[Path, str] = {}

    def _relation(self, sql: str) -> nw.LazyFrame:
        return nw.from_native(self.con.sql(sql))

    def read_csv(self, path: Path) -> nw.LazyFrame:
        # row_number() over an unordered window follows the scan, which keeps file order while
        # preserve_insertion_order is on: switched on here, for the connection that reads CSV (ingest).
        self.con.execute("SET preserve_insertion_order = true")
        # The dialect is the contract's (RFC 4180: comma, double quotes doubled, the header on line 1), not
        # sniffed: a sniffer takes a ragged row as a reason to skip lines or to read one column, and takes
        # '#' as a comment marker, silently dropping rows that start with Excel's '#N/A'.
        return self._relation(
            f"SELECT CAST(row_number() OVER () AS BIGINT) AS {ROW}, * FROM read_csv({_literal(str(path))}, "
            "header = true, all_varchar = true, auto_detect = true, delim = ',', quote = '\"', escape = '\"', "
            "comment = '', skip = 0)"
        )

    def read_parquet(self, path: Path) -> nw.LazyFrame:
        return self._relation(
            f"SELECT CAST(file_row_number + 1 AS BIGINT) AS {ROW}, * EXCLUDE (file_row_number) "
            f"FROM read_parquet({_literal(str(path))}, file_row_number = true)"
        )

    def tables(self) -> list[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_catalog = current_database() ORDER BY table_name"
        ).fetchall()
        return [r[0] for r in rows]

    def table(self, name: str) -> nw.LazyFrame:
        return nw.from_native(self.con.table(_quote(name)))

    def write(self, name: str, frame: nw.LazyFrame) -> None:
        relation = frame.to_native()
        staging = f"__writing_{name}"
        with _memory_guard(f"writing table {name}"):
            relation.create(_quote(staging))
        self.con.execute(f"DROP TABLE IF EXISTS {_quote(name)}")
        self.con.execute(f"ALTER TABLE {_quote(staging)} RENAME TO {_quote(name)}")

    def append(self, name: str, frame: nw.LazyFrame) -> None:
        if not self.has_table(name):
            self.write(name, frame)
            return
        frame.to_native().insert_into(_quote(name))

    def rename(self, name: str, new_name: str) -> None:
        self.con.execute(f"ALTER TABLE {_quote(name)} RENAME TO {_quote(new_name)}")

    def drop(self, name: str) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {_quote(name)}")

    def table_of(self, store: Path, name: str) -> nw.LazyFrame:
        if store not in self._attached:
            self._attached[store] = f"__store_{next(self._names)}"
            self.con.execute(f"ATTACH {_literal(str(store))} AS {self._attached[store]} (READ_ONLY)")
        return nw.from_native(self.con.table(f"{self._attached[store]}.main.{_quote(name)}"))

    def frame(self, data: pa.Table) -> nw.LazyFrame:
        view = f"__frame_{next(self._names)}"
        self.con.register(view, data)
        return nw.from_native(self.con.table(view))

    def persist(self, frame: nw.LazyFrame) -> nw.LazyFrame:
        name = f"__persist_{next(self._names)}"
        self.con.register("__persist_source", frame.to_native())
        with _memory_guard("materialising an intermediate result"):
            self.con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM __persist_source")
        self.con.unregister("__persist_source")
        self._persisted.append(name)
        return nw.from_native(self.con.table(name))

    def checkpoint(self) -> int:
        return len(self._persisted)

    def release(self, since: int = 0) -> None:
        for name in self._persisted[since:]:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
        del self._persisted[since:]

    def map_strings(self, frame: nw.LazyFrame, column: str, out: str, fn: HashBatch) -> nw.LazyFrame:
        function = f"__map_strings_{next(self._names)}"

        def batch(values: pa.Array) -> pa.Array:
            return pa.array(fn(values.to_pylist()), type=pa.string())

        self.con.create_function(function, batch, ["VARCHAR"], "VARCHAR", type=PythonUDFType.ARROW, side_effects=False)
        self._functions.append(function)
        relation = frame.to_native()
        return nw.from_native(relation.project(f"*, {function}({_quote(column)}) AS {_quote(out)}"))

    def close(self) -> None:
        # Python functions must be removed before closing, or DuckDB reports leaked objects at exit.
        for function in self._functions:
            self.con.remove_function(function)
        self._functions.clear()
        for alias in self._attached.values():
            self.con.execute(f"DETACH {alias}")
        self._attached.clear()
        if not self._read_only:
            # Fold the write-ahead log into the file now, so that a failure (a full disk) raises here rather
            # than leaving the log behind when the file is published without it.
            self.con.execute("CHECKPOINT")
        self.con.close()
        self._spill.cleanup()
        super().close()
