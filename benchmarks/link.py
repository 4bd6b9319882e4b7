"""Record linkage quality and throughput: ``phm link`` on the generated benchmark with known truth.

    python benchmarks/link.py --records 20000 [--engine duckdb|spark] [--seed 1]

Generates two extracts of about ``--records`` records each (``openphm.link.benchmark``: typing errors,
swapped names, house moves, missing and invalid NHS numbers, transposed dates, formatting noise), links them
with the shipped settings and prints pairwise precision and recall against the truth, overall and for the
pairs the model had to find (no shared valid NHS number), records a second, peak memory, and precision and
recall had the threshold been each of a few other values (the pairs are scored once; only the cut moves).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import polars as pl

from openphm.link.benchmark import generate, pairwise_quality
from openphm.link.linker import link
from openphm.link.settings import load_settings

THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000, help="records a side (about)")
    parser.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    data = generate(args.records, seed=args.seed)
    settings = load_settings()
    with tempfile.TemporaryDirectory() as folder:
        left, right = Path(folder) / "left.csv", Path(folder) / "right.csv"
        data.left.write_csv(left)
        data.right.write_csv(right)
        started = time.perf_counter()
        result = link(left, right, settings, engine=args.engine)
        seconds = time.perf_counter() - started
    quality = pairwise_quality(result.link_map, data.truth)
    modelled = result.link_map.filter(pl.col("method") != "nhs_number")
    model_quality = pairwise_quality(modelled, data.truth.join(modelled, on=["source", "record_id"], how="semi"))
    print(f"records: {result.records:,} ({data.left.height:,} left, {data.right.height:,} right), engine {args.engine}")
    print(f"true pairs {quality.true_pairs:,}, predicted {quality.predicted_pairs:,}")
    print(f"precision {quality.precision:.4f}  recall {quality.recall:.4f}  (threshold {settings.threshold})")
    print(f"pairs left to the model: precision {model_quality.precision:.4f}  recall {model_quality.recall:.4f}")
    print(
        f"{seconds:.1f} s, {result.records / seconds:,.0f} records a second; "
        f"left-right pairs scored {result.pairs.height:,}"
    )
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    truth = data.truth.filter(pl.col("source") == "left").join(
        data.truth.filter(pl.col("source") == "right"), on="person", suffix="_r"
    )
    true_pairs = set(zip(truth["record_id"], truth["record_id_r"], strict=True))
    deterministic = result.link_map.filter(pl.col("method") == "nhs_number")
    fixed = deterministic.filter(pl.col("source") == "left").join(
        deterministic.filter(pl.col("source") == "right"), on="person_key", suffix="_r"
    )
    fixed_pairs = set(zip(fixed["record_id"], fixed["record_id_r"], strict=True))
    print("threshold  precision  recall   (pairs, before clustering)")
    for threshold in THRESHOLDS:
        kept = result.pairs.filter((pl.col("match_probability") >= threshold) & ~pl.col("nhs_conflict"))
        found = fixed_pairs | set(zip(kept["record_id_l"], kept["record_id_r"], strict=True))
        hits = len(found & true_pairs)
        print(f"{threshold:9}  {hits / max(len(found), 1):.4f}     {hits / len(true_pairs):.4f}")


if __name__ == "__main__":
    main()
