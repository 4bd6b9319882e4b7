"""OMOP import throughput: rows a second and peak memory of ``phm import omop`` on a large generated CDM folder.

    python benchmarks/import_omop.py --persons 200000

The folder is generated, not sampled: ``--persons`` people and about 20 clinical rows each spread over visits,
conditions, measurements, observations, drugs and procedures, with ids written as floats (``123.0``) as CSV
exports do, and a mix of vocabularies (SNOMED, ICD10, ICD10CM, LOINC in US units, dm+d, RxNorm) so every route
of the importer is exercised. Volume, not realism.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import polars as pl

from openphm.importers.omop import import_omop

CONCEPTS = [
    ("1", "SNOMED", "44054006"),
    ("2", "SNOMED", "38341003"),
    ("3", "ICD10", "I21.9"),
    ("4", "ICD10CM", "E11.9"),
    ("5", "LOINC", "2093-3"),
    ("6", "LOINC", "4548-4"),
    ("7", "LOINC", "8480-6"),
    ("8", "SNOMED", "60621009"),
    ("9", "dm+d", "39113611000001102"),
    ("10", "RxNorm", "197361"),
    ("11", "OPCS4", "K40.1"),
    ("12", "SNOMED", "80146002"),
]
"""The concepts the generated rows point at: (concept_id, vocabulary_id, concept_code)."""


def _pick(seed: int, choices: list[str]) -> pl.Expr:
    """One of ``choices`` per row, spread by a hash of the row number (repeatable, no random state)."""
    index = (pl.col("i").hash(seed) % len(choices)).cast(pl.Int64)
    return pl.lit(pl.Series(choices)).gather(index)


def _rows(count: int, persons: int, seed: int) -> pl.DataFrame:
    """``count`` rows with a float-style id, a person and a date."""
    frame = pl.DataFrame({"i": pl.int_range(0, count, eager=True)})
    return frame.with_columns(
        (pl.col("i") + 1).cast(pl.String).add(".0").alias("id"),
        ((pl.col("i").hash(seed) % persons) + 1).cast(pl.String).add(".0").alias("person_id"),
        (pl.date(2015, 1, 1) + pl.duration(days=pl.col("i").hash(seed + 1) % 2500)).cast(pl.String).alias("date"),
    )


def generate(folder: Path, persons: int) -> int:
    """Write the CDM tables into ``folder``; return the number of rows written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0

    def save(name: str, frame: pl.DataFrame) -> None:
        nonlocal written
        frame.write_csv(folder / f"{name}.csv")
        written += frame.height

    ids = pl.DataFrame({"i": pl.int_range(0, persons, eager=True)})
    save(
        "PERSON",
        ids.select(
            (pl.col("i") + 1).cast(pl.String).add(".0").alias("person_id"),
            _pick(1, ["8507.0", "8532.0", "0.0"]).alias("gender_concept_id"),
            (1930 + pl.col("i").hash(2) % 90).cast(pl.String).add(".0").alias("year_of_birth"),
            (1 + pl.col("i").hash(3) % 12).cast(pl.String).add(".0").alias("month_of_birth"),
            pl.lit("1.0").alias("day_of_birth"),
            pl.lit("8527.0").alias("race_concept_id"),
        ),
    )
    save(
        "OBSERVATION_PERIOD",
        ids.select(
            (pl.col("i") + 1).cast(pl.String).add(".0").alias("person_id"),
            pl.lit("2010-01-01").alias("observation_period_start_date"),
            pl.lit("2022-12-31").alias("observation_period_end_date"),
        ),
    )
    save(
        "DEATH",
        ids.head(persons // 50).select(
            (pl.col("i") + 1).cast(pl.String).alias("person_id"), pl.lit("2021-06-01").alias("death_date")
        ),
    )
    visits = _rows(persons * 4, persons, 10)
    save(
        "VISIT_OCCURRENCE",
        visits.select(
            pl.col("id").alias("visit_occurrence_id"),
            "person_id",
            _pick(11, ["9202.0"] * 6 + ["9201.0", "9203.0", "262.0", "581477.0"]).alias("visit_concept_id"),
            pl.col("date").alias("visit_start_date"),
            pl.col("date").alias("visit_end_date"),
        ),
    )

    def clinical(
        name: str, prefix: str, date: str, count: int, seed: int, concepts: list[str], **extra: pl.Expr
    ) -> None:
        rows = _rows(count, persons, seed)
        concept = _pick(seed + 2, concepts)
        codes = {c: k for c, _, k in CONCEPTS}
        save(
            name,
            rows.select(
                pl.col("id").alias(f"{name.lower()}_id"),
                "person_id",
                pl.col("date").alias(date),
                ((pl.col("i").hash(seed + 3) % (persons * 4)) + 1)
                .cast(pl.String)
                .add(".0")
                .alias("visit_occurrence_id"),
                concept.replace_strict(codes).alias(f"{prefix}_source_value"),
                concept.add(".0").alias(f"{prefix}_source_concept_id"),
                pl.lit("0").alias(f"{prefix}_concept_id"),
                *(expr.alias(column) for column, expr in extra.items()),
            ),
        )

    clinical("CONDITION_OCCURRENCE", "condition", "condition_start_date", persons * 5, 20, ["1", "2", "3", "4"])
    clinical(
        "MEASUREMENT",
        "measurement",
        "measurement_date",
        persons * 6,
        30,
        ["5", "6", "7", "8"],
        value_as_number=(pl.col("i").hash(31) % 200).cast(pl.String),
        unit_source_value=_pick(32, ["mg/dL", "%", "mm[Hg]", "kg/m2", "g/L"]),
    )
    clinical(
        "OBSERVATION",
        "observation",
        "observation_date",
        persons,
        40,
        ["12", "8"],
        value_as_number=pl.lit(None, pl.String),
        unit_source_value=pl.lit(None, pl.String),
    )
    clinical("DRUG_EXPOSURE", "drug", "drug_exposure_start_date", persons * 4, 50, ["9", "10"])
    clinical("PROCEDURE_OCCURRENCE", "procedure", "procedure_date", persons * 2, 60, ["11", "12"])
    save("CONCEPT", pl.DataFrame(CONCEPTS, schema=["concept_id", "vocabulary_id", "concept_code"], orient="row"))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "cdm"
        rows = generate(source, args.persons)
        size = sum(p.stat().st_size for p in source.iterdir()) / 1e6
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        result = import_omop(source, Path(folder) / "out")
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{args.persons:,} persons, {rows:,} CDM rows ({size:,.0f} MB) imported in {seconds:.1f} s")
        print(
            f"{rows / seconds:,.0f} rows a second; peak memory {peak:,.0f} MB (after generating: {peak_before:,.0f} MB)"
        )
        for table, n in result.written.items():
            print(f"  {table}: {n:,} rows")


if __name__ == "__main__":
    main()
