"""Opening a store, and publishing a new one atomically.

A command that changes a store builds a complete new copy beside it and swaps it in only when every
step has succeeded, so a failed or killed run leaves the previous store exactly as it was.

- DuckDB store (one file): the copy is a file; the swap is one ``os.replace``, atomic on POSIX.
- Parquet store (a folder): the copy hard-links the unchanged Parquet files (cheap, they are never
  modified in place); the swap is two renames. If a run dies between them, the next open finds the
  previous folder under ``<store>.replaced-*`` and puts it back.

Readers see one version from open to close. A DuckDB reader keeps the replaced file open (its inode
lives on). A Parquet reader reads a private snapshot - hard links to the store's files, taken while
the folder was not swapped - so a publish during a report never mixes old and new tables.

Whatever a killed command leaves beside the store (a half-built copy, a reader's snapshot, a parked
previous folder) is removed by the next command that opens or builds it. The copies carry their
process id, so nothing belonging to a live process is touched.
"""

from __future__ import annotations

import errno
import os
import re
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


_OWNED = re.compile(r"-(\d+)-[0-9a-f]{12}(\.wal)?$")
"""The tail of a building copy's or reader snapshot's name: the owning process id and a random tag."""
_SNAPSHOT_TRIES = 5


def _owned(store: Path, kind: str) -> Path:
    """A path beside ``store`` for this process's ``kind`` (building, reading) copy."""
    return store.with_name(f".{store.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:12]}")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs: its leftovers are not ours to remove while it does."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        wal.unlink()


def _recover(store: Path) -> None:
    """Undo a Parquet-folder swap that was interrupted; remove what killed commands left beside the store.

    While the store exists every parked ``.replaced-*`` folder is a superseded version (its deletion was
    interrupted), so at most one is ever parked when the store is missing: the one to put back.
    """
    if not store.exists():
        left = sorted(store.parent.glob(f"{store.name}.replaced-*"))
        if left:
            left[-1].rename(store)
    if store.exists():
        for old in store.parent.glob(f"{store.name}.replaced-*"):
            _remove(old)
    for kind in ("building", "reading"):
        for path in store.parent.glob(f".{store.name}.{kind}-*"):
            owner = _OWNED.search(path.name)
            if owner and not process_alive(int(owner.group(1))):
                _remove(path)


def open_store(store: Path, engine: str = "duckdb") -> Engine:
    """Open an existing store for reading: one consistent version until ``close``."""
    cls = _check_kind(store, engine)
    _recover(store)
    if not store.exists():
        raise StoreError(f"no store at {store}: run 'phm ingest' first")
    if cls.store_format == "duckdb":
        from openphm.engine.duckdb_engine import DuckDBEngine

        return DuckDBEngine(store, read_only=True)
    eng = cls(_snapshot(store))
    eng.snapshot = eng.location
    return eng


def _snapshot(store: Path) -> Path:
    """Hard links to every file of a Parquet store, taken while the folder was not swapped.

    The folder's inode is the same before and after the copy only if no publish renamed it meanwhile;
    otherwise the copy may mix versions and is taken again.
    """
    for _ in range(_SNAPSHOT_TRIES):
        snapshot = _owned(store, "reading")
        try:
            before = store.stat().st_ino
            shutil.copytree(store, snapshot, copy_function=os.link)
            if store.stat().st_ino == before:
                return snapshot
        except (FileNotFoundError, shutil.Error):
            pass  # a publish swapped the folder while it was copied
        _remove(snapshot)
        _recover(store)
    raise StoreError(f"{store}: the store kept changing while it was opened; try again")


@contextmanager
def building(store: Path, engine: str = "duckdb", *, start_from_existing: bool) -> Iterator[Engine]:
    """Yield an engine writing a new version of ``store``; publish it only if the block succeeds.

    ``start_from_existing`` copies the current store first (a pipeline run adds tables to it); otherwise
    the new store starts empty (an ingest replaces everything).
    """
    cls = _check_kind(store, engine)
    _recover(store)
    store.parent.mkdir(parents=True, exist_ok=True)
    staging = _owned(store, "building")
    if start_from_existing and not store.exists():
        raise StoreError(f"no store at {store}: run 'phm ingest' first")
    try:
        if start_from_existing and store.is_dir():
            shutil.copytree(store, staging, copy_function=os.link)
        elif start_from_existing:
            shutil.copy2(store, staging)
        elif cls.store_format == "parquet":
            staging.mkdir()
        eng = cls(staging)
        try:
            yield eng
        finally:
            eng.close()  # DuckDB writes its last blocks here: a full disk may show only now
        _publish(staging, store)
    except BaseException as exc:
        _remove(staging)
        if _disk_full(exc):
            raise StoreError(
                f"{store}: no space left on the device while writing the new store; the previous store is "
                "unchanged (free space, or put the store on a larger disk)"
            ) from None
        raise


def _disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a full disk: an OSError, or an engine's own error saying so."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "no space left on device" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _publish(staging: Path, store: Path) -> None:
    if staging.is_file():
        if staging.with_name(staging.name + ".wal").exists():
            # Data still in the log is not in the file: publishing the file alone would lose it.
            raise StoreError(f"{store}: the new store was not completed (its log was not written back)")
        staging.replace(store)
        return
    if store.exists():
        old = store.with_name(f"{store.name}.replaced-{uuid.uuid4().hex[:12]}")
        store.rename(old)
        staging.rename(store)
        shutil.rmtree(old)
    else:
        staging.rename(store)
