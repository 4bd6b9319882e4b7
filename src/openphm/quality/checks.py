"""The check types: each a function from one settings entry to counts of records by level.

A check type is written once and applied to whatever tables and columns the settings name (the way OHDSI's
Data Quality Dashboard applies its parameterised check types). Each returns a lazy frame of
``level, level_key, numerator, denominator`` - ``numerator`` the records that break the check - or None when
the table it needs was not supplied. :func:`openphm.quality.assess.assess` turns those counts into rates and
statuses. Everything is narwhals over the store's engine; the only values brought into Python are a table's
earliest date (to lay out its calendar of months) and the few codes of a measure's code list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from importlib.resources.abc import Traversable
from pathlib import Path

import narwhals as nw
import pyarrow as pa

from openphm.codes.conditions import Definition, read_definition
from openphm.codes.systems import SYSTEMS
from openphm.content import content_path
from openphm.contract.schema import ID_COLUMNS
from openphm.engine import Engine, distinct
from openphm.errors import InputError
from openphm.quality.settings import CheckSpec


@dataclass(frozen=True)
class Inputs:
    """What every check type may read: the store's tables (None if absent), the engine and the extract date."""

    tables: Mapping[str, nw.LazyFrame | None]
    engine: Engine
    extract_date: date
    codelists: Path | None = None
    """A folder of the user's own definitions (``--codelists``): where measure limits and codes come from."""

    def table(self, name: str) -> nw.LazyFrame | None:
        return self.tables.get(name)


Counts = nw.LazyFrame | None
CheckType = Callable[[CheckSpec, Inputs], Counts]

_BAD = "_bad"
_RECORDS = "_records"
PRACTICE = "practice_code"
MONTH = "_month"


def _shaped(frame: nw.LazyFrame, level: str) -> nw.LazyFrame:
    return frame.select(
        nw.lit(level, dtype=nw.String).alias("level"),
        nw.col("level_key").cast(nw.String),
        nw.col("numerator").cast(nw.Int64),
        nw.col("denominator").cast(nw.Int64),
    )


def keyed(frame: nw.LazyFrame, spec: CheckSpec, inputs: Inputs) -> nw.LazyFrame:
    """``frame`` with what its levels group by: the person's practice, and the month of the check's date."""
    names = frame.collect_schema().names()
    if "practice" in spec.levels and PRACTICE not in names:
        person = inputs.table("person")
        assert person is not None  # a required table: ingest never writes a store without it
        frame = frame.join(person.select("person_id", PRACTICE), on="person_id", how="left")
    if "month" in spec.levels and MONTH not in names:
        frame = frame.with_columns(nw.col(spec.param("date")).dt.to_string("%Y-%m").alias(MONTH))
    return frame


def by_levels(
    frame: nw.LazyFrame, bad: nw.Expr, spec: CheckSpec, inputs: Inputs, weight: str | None = None
) -> nw.LazyFrame:
    """Records breaking the check (``bad``) over all records, for each level the settings ask for.

    The practice of a record is its person's registered practice; the month is that of the check's date column.
    ``weight`` names a column of record counts when ``frame`` holds groups of records rather than records.
    """
    frame = keyed(frame, spec, inputs)
    records = nw.col(weight).cast(nw.Int64) if weight else nw.lit(1, dtype=nw.Int64)
    frame = frame.with_columns((bad.fill_null(False).cast(nw.Int64) * records).alias(_BAD), records.alias(_RECORDS))
    parts = []
    for level in spec.levels:
        if level == "all":
            rows = frame.with_columns(nw.lit("", dtype=nw.String).alias("level_key"))
        else:
            column = PRACTICE if level == "practice" else MONTH
            rows = frame.filter(~nw.col(column).is_null()).with_columns(nw.col(column).alias("level_key"))
        counted = rows.group_by("level_key").agg(
            nw.col(_BAD).sum().alias("numerator"), nw.col(_RECORDS).sum().alias("denominator")
        )
        parts.append(_shaped(counted, level))
    return nw.concat(parts, how="vertical")


def _columns(spec: CheckSpec, *extra: str | None) -> list[str]:
    """The columns a check reads (the person's id first where the table has one), without repeats."""
    wanted = ["person_id", spec.column, spec.param("date"), *extra]
    return list(dict.fromkeys(c for c in wanted if c))


def _present(frame: nw.LazyFrame, columns: list[str]) -> list[str]:
    names = frame.collect_schema().names()
    return [c for c in columns if c in names]


# -- conformance -----------------------------------------------------------------------------------------------

SCTID_SYSTEMS = ("snomed", "dmd")
"""Systems whose codes are SNOMED CT identifiers (dm+d is the UK drug extension of SNOMED CT)."""
CONCEPT_PARTITION = r"^[0-9]{3,15}[01]0[0-9]$"
"""A SNOMED CT concept id: the two digits before the check digit are the partition identifier, 00 (short
format) or 10 (long format, an extension's namespace); 01/11 and 02/12 mark description and relationship ids."""


def code_in_system(spec: CheckSpec, inputs: Inputs) -> Counts:
    """Stored codes (canonical form) that do not have their system's form; SNOMED CT ids that are not concepts."""
    frame = inputs.table(spec.table)
    if frame is None:
        return None
    system = SYSTEMS.get(spec.param("system", ""))
    if system is None:
        raise InputError(f"check {spec.id}: system must be one of {', '.join(SYSTEMS)}")
    code = nw.col(spec.column)
    bad = ~code.str.contains(f"^(?:{system.pattern})$")
    if system.name in SCTID_SYSTEMS:
        bad = bad | ~code.str.contains(CONCEPT_PARTITION)
    frame = keyed(frame.select(*_present(frame, _columns(spec))).filter(~code.is_null()), spec, inputs)
    # The patterns run once per distinct code (and practice, month) rather than once per record: a few thousand
    # codes stand for millions of records.
    groups = _present(frame, [spec.column, PRACTICE, MONTH])
    codes = frame.group_by(*groups).agg(nw.len().alias(_RECORDS))
    return by_levels(codes, bad, spec, inputs, weight=_RECORDS)


@cache
def _measure(measure: str, root: str | None) -> Definition | None:
    """One measure's definition, read from its own folder (reading every definition takes seconds)."""
    folder: Traversable | Path = Path(root) / measure if root else content_path("codelists", measure)
    if not folder.joinpath("manifest.yaml").is_file():
        return None
    return read_definition(folder)


def value_in_range(spec: CheckSpec, inputs: Inputs) -> Counts:
    """Values below ``min`` or above ``max``; for a ``measure``, its readings against its plausible limits."""
    frame = inputs.table(spec.table)
    if frame is None:
        return None
    low, high = spec.param("min"), spec.param("max")
    value = nw.col(spec.column)
    frame = frame.select(*_present(frame, _columns(spec, "snomed_code"))).filter(~value.is_null())
    measure = spec.param("measure")
    if measure:
        definition = _measure(str(measure), str(inputs.codelists) if inputs.codelists else None)
        if definition is None or "snomed" not in definition.codelists:
            raise InputError(f"check {spec.id}: no measure definition '{measure}' with SNOMED CT codes")
        if definition.plausible is not None:
            low = definition.plausible[0] if low is None else low
            high = definition.plausible[1] if high is None else high
        codes = pa.table({"snomed_code": pa.array(sorted(definition.codelists["snomed"].codes), pa.string())})
        frame = frame.join(inputs.engine.frame(codes), on="snomed_code", how="inner")
    if low is None and high is None:
        raise InputError(f"check {spec.id}: needs min, max or a measure with plausible limits")
    bad = nw.lit(False)
    if low is not None:
        bad = bad | (value < float(low))
    if high is not None:
        bad = bad | (value > float(high))
    return by_levels(frame, bad, spec, inputs)


# -- completeness ----------------------------------------------------------------------------------------------


def not_null(spec: CheckSpec, inputs: Inputs) -> Counts:
    """Records whose column is blank or holds a value that means unknown (``missing_values``, e.g. Z)."""
    frame = inputs.table(spec.table)
    if frame is None:
        return None
    column = nw.col(spec.column)
    bad = column.is_null()
    missing = [str(v) for v in spec.param("missing_values") or ()]
    if missing:
        bad = bad | column.is_in(missing)
    keep = _columns(spec, PRACTICE if spec.table == "person" else None)
    return by_levels(frame.select(*_present(frame, keep)), bad, spec, inputs)


def quarantined_share(spec: CheckSpec, inputs: Inputs) -> Counts:
    """Source rows quarantined at ingest for ``reasons`` on the column, over the table's input rows.

    Used for the identifier: a row without a valid NHS number cannot be loaded, so its absence is measured where
    ingest counted it. Only the all level exists: such a row cannot be placed in a practice, and the
    quarantine holds no dates.
    """
    quarantine, log = inputs.table("quarantine"), inputs.table("run_log")
    if quarantine is None or log is None:
        return None
    columns = list(ID_COLUMNS) if spec.column in ID_COLUMNS else [spec.column]
    reasons = [str(r) for r in spec.param("reasons") or ("missing_value",)]
    broken = (
        quarantine.filter(
            (nw.col("table") == spec.table) & nw.col("column").is_in(columns) & nw.col("reason").is_in(reasons)
        )
        .select("row")
        .pipe(distinct)
        .select(nw.len().alias("numerator"))
    )
    supplied = (
        log.filter(
            (nw.col("command") == "ingest")
            & (nw.col("step") == "reconcile")
            & (nw.col("item") == spec.table)
            & (nw.col("metric") == "input_rows")
        )
        .group_by("item")
        .agg(nw.col("value").max().alias("denominator"))
        .select("denominator")
    )
    counted = broken.join(supplied, how="cross").with_columns(nw.lit("", dtype=nw.String).alias("level_key"))
    return _shaped(counted, "all")


# -- plausibility ----------------------------------------------------------------------------------------------


def _period_index(column: nw.Expr, period: str) -> nw.Expr:
    year = column.dt.year().cast(nw.Int64)
    return year * 12 + column.dt.month().cast(nw.Int64) - 1 if period == "month" else year


def _index_of(day: date, period: str) -> int:
    return day.year * 12 + day.month - 1 if period == "month" else day.year


def _key_of(index: int, period: str) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}" if period == "month" else f"{index:04d}"


def _last_complete(extract: date, period: str) -> int:
    """The last period that ends on or before the extract date."""
    if period == "month":
        ends_month = (extract + timedelta(days=1)).day == 1
        return _index_of(extract, period) - (0 if ends_month else 1)
    return extract.year - (0 if (extract.month, extract.day) == (12, 31) else 1)


def period_counts(spec: CheckSpec, inputs: Inputs) -> nw.LazyFrame | None:
    """Records per period (``_period``, ``level_key``, ``_n``), every complete period present, zeros included.

    The calendar runs from the first period with data (left out if the data begin part-way through it) to the
    last period complete by the extract date, at most ``window`` periods. It is a small table laid out in
    Python from the earliest date, so a period with no record at all still has its row (a count of 0).
    """
    frame = inputs.table(spec.table)
    if frame is None:
        return None
    period = spec.param("period", "month")
    column = nw.col(spec.param("date"))
    first = frame.select(column.min()).collect().item()
    if first is None:
        return None
    start = _index_of(first, period)
    if first != (date(first.year, first.month, 1) if period == "month" else date(first.year, 1, 1)):
        start += 1
    end = _last_complete(inputs.extract_date, period)
    start = max(start, end - int(spec.param("window", 60)) + 1)
    if start > end:
        return None
    indexes = list(range(start, end + 1))
    calendar = inputs.engine.frame(
        pa.table(
            {
                "_period": pa.array(indexes, pa.int64()),
                "level_key": pa.array([_key_of(i, period) for i in indexes], pa.string()),
            }
        )
    )
    counts = (
        frame.filter(~column.is_null())
        .select(_period_index(column, period).alias("_period"))
        .group_by("_period")
        .agg(nw.len().alias("_n"))
    )
    return calendar.join(counts, on="_period", how="left").with_columns(nw.col("_n").fill_null(0).cast(nw.Int64))


def volume_history(spec: CheckSpec, inputs: Inputs) -> Counts:
    """Each period's records against the median of its ``neighbours`` periods either side (itself left out).

    ``denominator`` is that median (the records expected), ``numerator`` the shortfall below it (0 when the
    period has as many or more), so the rate is the share of the expected records that are missing: a month
    with no A&E data at all has a rate of 1.
    """
    series = period_counts(spec, inputs)
    if series is None:
        return None
    series = inputs.engine.persist(series)  # read three times below
    reach = int(spec.param("neighbours", 3))
    other = series.select(nw.col("_period").alias("_other"), nw.col("_n").cast(nw.Float64).alias("_n_other"))
    expected = (
        series.select("_period")
        .join(other, how="cross")
        .filter(((nw.col("_period") - nw.col("_other")).abs() <= reach) & (nw.col("_period") != nw.col("_other")))
        .group_by("_period")
        .agg(nw.col("_n_other").median().alias("_expected"))
    )
    counted = (
        series.join(expected, on="_period", how="inner")
        # The median of whole counts is whole or a half: twice it is exact, and (2m + 1) // 2 rounds halves up
        # identically on every engine (their own rounding of x.5 differs).
        .with_columns((((nw.col("_expected") * 2).cast(nw.Int64) + 1) // 2).alias("denominator"))
        .with_columns((nw.col("denominator") - nw.col("_n")).clip(lower_bound=0).alias("numerator"))
    )
    return _shaped(counted, spec.param("period", "month"))


def after_death(spec: CheckSpec, inputs: Inputs) -> Counts:
    """Records dated more than ``grace_days`` after the person's death, over the records of people who died.

    OHDSI's plausibleBeforeDeath: the grace allows administrative records made soon after a death.
    """
    frame, person = inputs.table(spec.table), inputs.table("person")
    if frame is None or person is None:
        return None
    date_column = spec.param("date")
    grace = int(spec.param("grace_days", 0))
    # The last plausible day is worked out once per person who died, not once per record.
    died = person.filter(~nw.col("date_of_death").is_null()).select(
        "person_id", PRACTICE, nw.col("date_of_death").dt.offset_by(f"{grace}d").cast(nw.Date).alias("_last_day")
    )
    frame = frame.select("person_id", date_column).join(died, on="person_id", how="inner")
    return by_levels(frame, nw.col(date_column) > nw.col("_last_day"), spec, inputs)


def before_birth(spec: CheckSpec, inputs: Inputs) -> Counts:
    """Records dated before the person's month of birth (the store keeps the birth date to the month)."""
    frame, person = inputs.table(spec.table), inputs.table("person")
    if frame is None or person is None:
        return None
    date_column = spec.param("date")
    born = person.select("person_id", "date_of_birth", PRACTICE)
    frame = frame.select("person_id", date_column).join(born, on="person_id", how="inner")
    return by_levels(frame, nw.col(date_column) < nw.col("date_of_birth"), spec, inputs)


# -- coverage --------------------------------------------------------------------------------------------------


def periods_present(spec: CheckSpec, inputs: Inputs) -> Counts:
    """Periods of the calendar (see :func:`period_counts`) with no record at all, over the periods in it."""
    series = period_counts(spec, inputs)
    if series is None:
        return None
    counted = series.select(
        (nw.col("_n") == 0).cast(nw.Int64).sum().alias("numerator"),
        nw.len().alias("denominator"),
        nw.lit("", dtype=nw.String).alias("level_key"),
    )
    return _shaped(counted, "all")


def people_without_records(spec: CheckSpec, inputs: Inputs) -> Counts:
    """People registered and alive at the extract date with no record at all in the table.

    At the practice level a rate near 1 is a practice that sends no data of that kind.
    """
    frame, person = inputs.table(spec.table), inputs.table("person")
    if frame is None or person is None:
        return None
    extract = nw.lit(inputs.extract_date, dtype=nw.Date)
    current = person.filter(
        (nw.col("registration_end").is_null() | (nw.col("registration_end") >= extract))
        & (nw.col("date_of_death").is_null() | (nw.col("date_of_death") >= extract))
    ).select("person_id", PRACTICE)
    seen = frame.select("person_id").pipe(distinct).with_columns(nw.lit(True).alias("_seen"))
    joined = current.join(seen, on="person_id", how="left")
    return by_levels(joined, nw.col("_seen").is_null(), spec, inputs)


CHECK_TYPES: dict[str, CheckType] = {
    "code_in_system": code_in_system,
    "value_in_range": value_in_range,
    "not_null": not_null,
    "quarantined_share": quarantined_share,
    "volume_history": volume_history,
    "after_death": after_death,
    "before_birth": before_birth,
    "periods_present": periods_present,
    "people_without_records": people_without_records,
}
"""Every check type by the name the settings file uses."""

COUNTS_PERIODS = frozenset({"periods_present"})
"""Check types whose numerator and denominator count months or years, not records: nothing about anyone,
so they are shown exactly where record counts pass through disclosure control."""
