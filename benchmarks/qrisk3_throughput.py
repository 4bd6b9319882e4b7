"""QRISK3 throughput: people scored per second by ``qrisk3_score`` on generated valid inputs.

    python benchmarks/qrisk3_throughput.py --people 1000000 --engines duckdb,polars

Rows are random but valid (ages 25-84, both sexes, every ethnicity and smoking level, about 5% of each
measurement missing so the substitution path runs too). The timed step is the score itself: the rows are
already in the engine (an Arrow table), and the result is reduced to a sum so that moving a million
rows back into Python is not what is measured. Each engine is timed over ``--repeat`` runs; the best counts.
"""

from __future__ import annotations

import argparse
import time

import narwhals as nw
import numpy as np
import pyarrow as pa

from openphm.risk.qrisk3 import BINARY, qrisk3_score


def generate(people: int, seed: int = 2017) -> pa.Table:
    rng = np.random.default_rng(seed)

    def measure(low: float, high: float) -> pa.Array:
        values = rng.uniform(low, high, people)
        return pa.array(values, mask=rng.random(people) < 0.05)

    columns: dict[str, pa.Array] = {
        "sex": pa.array(rng.choice(["female", "male"], people)),
        "age": pa.array(rng.integers(25, 85, people).astype(np.float64)),
        **{name: pa.array((rng.random(people) < 0.1).astype(np.float64)) for name in BINARY},
        "bmi": measure(18, 45),
        "ethrisk": pa.array(rng.integers(1, 10, people).astype(np.float64)),
        "rati": measure(2, 8),
        "sbp": measure(95, 180),
        "sbps5": measure(0, 20),
        "smoke_cat": pa.array(rng.integers(0, 5, people).astype(np.float64)),
        "town": measure(-6, 10),
    }
    diabetes = rng.integers(0, 10, people)  # at most one type of diabetes per person
    columns["b_type1"] = pa.array((diabetes == 0).astype(np.float64))
    columns["b_type2"] = pa.array((diabetes == 1).astype(np.float64))
    return pa.table(columns)


def frame(engine: str, table: pa.Table) -> tuple[nw.LazyFrame, object]:
    """The table as a lazy frame of ``engine`` (and what must stay alive while it is used)."""
    if engine == "duckdb":
        import duckdb

        connection = duckdb.connect()
        connection.register("inputs", table)
        return nw.from_native(connection.table("inputs")), connection
    if engine == "polars":
        import polars as pl

        return nw.from_native(pl.from_arrow(table).lazy()), None  # type: ignore[union-attr]
    raise SystemExit(f"unknown engine {engine!r}: duckdb or polars")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--engines", default="duckdb,polars")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    table = generate(args.people)
    print(f"{args.people:,} generated rows")
    for engine in args.engines.split(","):
        lazy, _keep = frame(engine, table)
        best = float("inf")
        for _ in range(args.repeat):
            started = time.perf_counter()
            total, scored = (
                qrisk3_score(lazy)
                .select(nw.col("qrisk3").sum().alias("total"), nw.col("qrisk3").count().alias("scored"))
                .collect()
                .row(0)
            )
            best = min(best, time.perf_counter() - started)
        print(
            f"{engine:>7}: {args.people / best:>12,.0f} people/s ({best:.2f} s; {scored:,} scored, "
            f"mean risk {total / scored:.2f}%)"
        )


if __name__ == "__main__":
    main()
