"""Turning generated arrays into contract tables and writing them, chunk by chunk, as Parquet or CSV.

A frame is a dict of NumPy arrays with ``_person`` (the person's number within the chunk) standing for
the identifier. Columns are typed as the contract declares (``openphm.contract.schema``); a day number of
``NO_DATE`` or a NaN is written as null. When contract violations are planted every column is written as
text, as an export would be, because a value such as ``2022-02-30`` has no place in a typed column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from openphm.contract.schema import TABLES
from openphm.synth.people import NO_DATE

ID_PREFIX = {"episode_id": "E", "attendance_id": "A", "appointment_id": "O"}
ARROW = {"str": pa.string(), "date": pa.date32(), "float": pa.float64(), "int": pa.int64(), "bool": pa.bool_()}


def _column(name: str, kind: str, values: np.ndarray) -> pa.Array:
    if name in ID_PREFIX and values.dtype.kind in "iu":
        text = pc.cast(pa.array(values, pa.int64()), pa.string())
        return pc.binary_join_element_wise(ID_PREFIX[name], text, "")
    if kind == "date":
        days = values.astype(np.int64)
        return pa.array(days.astype(np.int32), mask=days == NO_DATE).cast(pa.date32())
    if kind in ("float", "int") and values.dtype.kind == "f":
        missing = np.isnan(values)
        clean = np.where(missing, 0, values)
        return pa.array(clean.astype(np.int64) if kind == "int" else clean, ARROW[kind], mask=missing)
    return pa.array(values, ARROW[kind])


def to_arrow(name: str, frame: dict[str, np.ndarray], ids: pa.Array, id_column: str) -> pa.Table:
    """The frame as a typed table in the contract's column order (identifier first)."""
    table = TABLES[name]
    arrays: dict[str, pa.Array] = {}
    if table.person_level:
        arrays[id_column] = ids.take(pa.array(frame["_person"], pa.int64()))
    for column in table.columns:
        if column.name == "person_id" or column.name not in frame:
            continue
        arrays[column.name] = _column(column.name, column.type, frame[column.name])
    return pa.table(arrays)


def as_text(table: pa.Table) -> pa.Table:
    """Every column as text (dates ISO, booleans true/false)."""
    return pa.table({name: pc.cast(table[name], pa.string()) for name in table.column_names})


class TableWriter:
    """One file per table, appended to chunk by chunk (Parquet row groups, or CSV rows)."""

    def __init__(self, out: Path, fmt: str) -> None:
        self.out = out
        self.fmt = fmt
        self._writers: dict[str, pq.ParquetWriter | pacsv.CSVWriter] = {}
        self.rows: dict[str, int] = {}

    def write(self, name: str, table: pa.Table) -> None:
        writer = self._writers.get(name)
        if writer is None:
            path = self.out / f"{name}.{self.fmt}"
            if self.fmt == "parquet":
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            else:
                writer = pacsv.CSVWriter(path, table.schema, write_options=pacsv.WriteOptions(quoting_style="needed"))
            self._writers[name] = writer
        writer.write_table(table)
        self.rows[name] = self.rows.get(name, 0) + table.num_rows

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
