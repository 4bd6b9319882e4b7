"""Run the whole pipeline on two engines over one synthetic population and compare every output table.

    python benchmarks/compare_engines.py --people 100000 --engines duckdb,spark

It generates the population once, ingests and runs it on each engine (timing both), then compares every
table of the two stores: same tables, same columns and types, same rows (floats to 1e-9 relative, as the
engine-parity test does). It prints the times and one line per table, and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from openphm.engine import open_store
from openphm.ingest import ingest
from openphm.pipeline import run
from openphm.stages import STAGES
from openphm.synth import generate

KEY = b"benchmark-key-not-secret-0123456789abcdef"
VOLATILE = {"run_log"}
"""Run ids, times and engine names differ by design; the run log's facts are compared apart."""


def table_names(store: Path, engine: str) -> set[str]:
    eng = open_store(store, "polars" if engine == "spark" else engine)
    try:
        return set(eng.tables())
    finally:
        eng.close()


def table(store: Path, engine: str, name: str) -> pl.DataFrame:
    """One table of a store in Polars, sorted on every column (run_log: its comparable facts only).

    Tables are read one at a time, after both runs: holding every table of a 1M-person store while the
    second engine ran took the process past 18 GB. A Spark store is a folder of Parquet files, read here
    with Polars: collecting a 40M-row table through the Spark driver exceeded its 1 GB result limit.
    """
    eng = open_store(store, "polars" if engine == "spark" else engine)
    try:
        frame: pl.DataFrame = eng.table(name).collect(backend="polars").to_native()
    finally:
        eng.close()
    if name in VOLATILE:
        frame = frame.filter(pl.col("step").is_in(["reconcile", "stage"]) & (pl.col("metric") != "seconds"))
        frame = frame.select("command", "step", "item", "metric", "value")
    return frame.sort(frame.columns, nulls_last=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--keep", action="store_true", help="Keep the population and both stores (path printed).")
    args = parser.parse_args()
    first, second = args.engines.split(",")
    work = Path(tempfile.mkdtemp(prefix="openphm-compare-"))
    print(f"work folder: {work}", flush=True)
    try:
        synthetic = generate(work / "source", people=args.people, seed=1)
        stores = {}
        for engine in (first, second):
            store = work / (f"{engine}.duckdb" if engine == "duckdb" else engine)
            started = time.perf_counter()
            ingest(work / "source", store, key=KEY, engine=engine, extract_date=synthetic.extract_date)
            ingested = time.perf_counter() - started
            run(store, stages=STAGES, engine=engine)
            total = time.perf_counter() - started
            print(f"{engine}: ingest {ingested:.1f} s, ingest + run {total:.1f} s", flush=True)
            stores[engine] = store
        differ = 0
        names = {engine: table_names(store, engine) for engine, store in stores.items()}
        for name in sorted(names[first] | names[second]):
            if name not in names[first] or name not in names[second]:
                print(f"{name}: only in {first if name in names[first] else second}")
                differ += 1
                continue
            a, b = (table(stores[engine], engine, name) for engine in (first, second))
            try:
                assert a.schema == b.schema, "schemas differ"
                assert_frame_equal(a, b, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
                print(f"{name}: identical ({a.height:,} rows)", flush=True)
            except AssertionError as exc:
                differ += 1
                print(f"{name}: DIFFERENT - {str(exc).splitlines()[0]}", flush=True)
        print(f"{differ} of {len(names[first] | names[second])} tables differ")
        sys.exit(1 if differ else 0)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
