"""HES import throughput: rows a second of ``phm import hes`` on a large HES-shaped APC file.

    python benchmarks/import_hes_throughput.py --rows 1000000

The input is the artificial APC file from ``tests/data/hes`` (193 columns, 2,075 episodes) repeated until it
holds ``--rows`` episodes, with the episode key and the person id suffixed by the copy number so that keys
stay unique and people do not collapse into the 994 of the original. Volume, not realism.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import polars as pl

from openphm.importers.hes import import_hes

APC = Path(__file__).resolve().parent.parent / "tests" / "data" / "hes" / "artificial_hes_apc_0102_truncated.csv"


def generate(path: Path, rows: int) -> None:
    """Write the artificial APC file repeated to ``rows`` episodes, with unique keys per copy."""
    base = pl.read_csv(APC, infer_schema=False)
    copies = -(-rows // base.height)
    big = (
        pl.concat([base.with_columns(pl.lit(str(n)).alias("_copy")) for n in range(copies)])
        .head(rows)
        .with_columns(
            (pl.col("EPIKEY") + "_" + pl.col("_copy")).alias("EPIKEY"),
            (pl.col("PSEUDO_HESID") + "_" + pl.col("_copy")).alias("PSEUDO_HESID"),
        )
        .drop("_copy")
    )
    big.write_csv(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "apc.csv"
        generate(source, args.rows)
        size = source.stat().st_size / 1e6
        started = time.perf_counter()
        result = import_hes(Path(folder) / "out", apc=source)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{args.rows:,} APC episodes ({size:,.0f} MB, 193 columns) imported in {seconds:.1f} s")
        print(f"{args.rows / seconds:,.0f} rows a second; peak memory of the process {peak:,.0f} MB")
        for table, n in result.written.items():
            print(f"  {table}: {n:,} rows")


if __name__ == "__main__":
    main()
