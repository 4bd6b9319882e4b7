"""Polars over a folder of Parquet files: one sub-folder per table, streaming where Polars can."""

from __future__ import annotations

import itertools
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import ClassVar

import narwhals as nw
import polars as pl
import pyarrow as pa

from openphm.engine.base import ROW, Engine, HashBatch


def parquet_tables(location: Path) -> list[str]:
    """Tables of a Parquet-folder store: the sub-folders that hold Parquet files."""
    if not location.is_dir():
        return []
    return sorted(p.name for p in location.iterdir() if p.is_dir() and any(p.glob("*.parquet")))


class PolarsEngine(Engine):
    name: ClassVar[str] = "polars"
    store_format: ClassVar[str] = "parquet"

    def __init__(self, location: Path) -> None:
        super().__init__(location)
        self._scratch = tempfile.TemporaryDirectory(prefix="openphm-polars-")
        self._names = itertools.count()
        self._persisted: list[Path] = []

    def read_csv(self, path: Path) -> nw.LazyFrame:
        native = pl.scan_csv(path, infer_schema=False, has_header=True, encoding="utf8")
        native = native.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
        return nw.from_native(native)

    def read_parquet(self, path: Path) -> nw.LazyFrame:
        native = pl.scan_parquet(path).with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
        return nw.from_native(native)

    def tables(self) -> list[str]:
        return parquet_tables(self.location)

    def table(self, name: str) -> nw.LazyFrame:
        return self.table_of(self.location, name)

    def table_of(self, store: Path, name: str) -> nw.LazyFrame:
        return nw.from_native(pl.scan_parquet(store / name / "*.parquet"))

    def _sink(self, frame: nw.LazyFrame, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        native: pl.LazyFrame = frame.to_native()
        native.sink_parquet(folder / f"part-{uuid.uuid4().hex}.parquet")

    def write(self, name: str, frame: nw.LazyFrame) -> None:
        staging = self.location / f".writing-{name}"
        self._sink(frame, staging)
        target = self.location / name
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)

    def append(self, name: str, frame: nw.LazyFrame) -> None:
        self._sink(frame, self.location / name)

    def frame(self, data: pa.Table) -> nw.LazyFrame:
        return nw.from_native(pl.from_arrow(data).lazy())  # type: ignore[union-attr]

    def persist(self, frame: nw.LazyFrame) -> nw.LazyFrame:
        folder = Path(self._scratch.name) / f"persist-{next(self._names)}"
        self._sink(frame, folder)
        self._persisted.append(folder)
        return nw.from_native(pl.scan_parquet(folder / "*.parquet"))

    def map_strings(self, frame: nw.LazyFrame, column: str, out: str, fn: HashBatch) -> nw.LazyFrame:
        native: pl.LazyFrame = frame.to_native()
        mapped = native.with_columns(
            pl.col(column)
            .map_batches(lambda s: pl.Series(s.name, fn(s.to_list()), dtype=pl.String), return_dtype=pl.String)
            .alias(out)
        )
        return nw.from_native(mapped)

    def checkpoint(self) -> int:
        return len(self._persisted)

    def release(self, since: int = 0) -> None:
        for folder in self._persisted[since:]:
            shutil.rmtree(folder, ignore_errors=True)
        del self._persisted[since:]

    def close(self) -> None:
        self._scratch.cleanup()
        super().close()
