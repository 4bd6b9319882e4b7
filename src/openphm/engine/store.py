"""Opening a store, and publishing a new one atomically.

A command that changes a store builds a complete new copy beside it and swaps it in only when every
step has succeeded, so a failed or killed run leaves the previous store exactly as it was.

- DuckDB store (one file): the copy is a file; the swap is one ``os.replace``, atomic on POSIX.
- Parquet store (a folder): the copy hard-links the unchanged Parquet files (cheap, they are never
  modified in place); the swap is two renames. If a run dies between them, the next open finds the
  previous folder under ``<store>.replaced-*`` and puts it back.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from openphm.engine.base import Engine
from openphm.errors import StoreError

ENGINES = ("duckdb", "polars", "spark")


def _engine_class(engine: str) -> type[Engine]:
    if engine == "duckdb":
        from openphm.engine.duckdb_engine import DuckDBEngine

        return DuckDBEngine
    if engine == "polars":
        from openphm.engine.polars_engine import PolarsEngine

        return PolarsEngine
    if engine == "spark":
        from openphm.engine.spark_engine import SparkEngine

        return SparkEngine
    raise StoreError(f"unknown engine '{engine}': choose one of {', '.join(ENGINES)}")


def _check_kind(store: Path, engine: str) -> type[Engine]:
    cls = _engine_class(engine)
    is_duckdb_path = store.suffix == ".duckdb"
    if cls.store_format == "duckdb" and not is_duckdb_path:
        raise StoreError(f"the duckdb engine keeps its store in one file: give a path ending in .duckdb ({store})")
    if cls.store_format == "parquet" and is_duckdb_path:
        raise StoreError(
            f"the {engine} engine keeps its store as a folder of Parquet files: give a folder path ({store})"
        )
    return cls


def _recover(store: Path) -> None:
    """Undo a Parquet-folder swap that was interrupted between its two renames."""
    if store.exists():
        return
    left = sorted(store.parent.glob(f"{store.name}.replaced-*"))
    if left:
        left[-1].rename(store)


def open_store(store: Path, engine: str = "duckdb") -> Engine:
    """Open an existing store for reading."""
    cls = _check_kind(store, engine)
    _recover(store)
    if not store.exists():
        raise StoreError(f"no store at {store}: run 'phm ingest' first")
    if cls.store_format == "duckdb":
        from openphm.engine.duckdb_engine import DuckDBEngine

        return DuckDBEngine(store, read_only=True)
    return cls(store)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        wal.unlink()


@contextmanager
def building(store: Path, engine: str = "duckdb", *, start_from_existing: bool) -> Iterator[Engine]:
    """Yield an engine writing a new version of ``store``; publish it only if the block succeeds.

    ``start_from_existing`` copies the current store first (a pipeline run adds tables to it); otherwise
    the new store starts empty (an ingest replaces everything).
    """
    cls = _check_kind(store, engine)
    _recover(store)
    store.parent.mkdir(parents=True, exist_ok=True)
    staging = store.with_name(f".{store.name}.building-{uuid.uuid4().hex[:12]}")
    if start_from_existing:
        if not store.exists():
            raise StoreError(f"no store at {store}: run 'phm ingest' first")
        if store.is_dir():
            shutil.copytree(store, staging, copy_function=os.link)
        else:
            shutil.copy2(store, staging)
    elif cls.store_format == "parquet":
        staging.mkdir()
    eng = cls(staging)
    try:
        yield eng
    except BaseException:
        eng.close()
        _remove(staging)
        raise
    eng.close()
    _publish(staging, store)


def _publish(staging: Path, store: Path) -> None:
    if staging.is_file():
        staging.replace(store)
        return
    if store.exists():
        old = store.with_name(f"{store.name}.replaced-{uuid.uuid4().hex[:12]}")
        store.rename(old)
        staging.rename(store)
        shutil.rmtree(old)
    else:
        staging.rename(store)
