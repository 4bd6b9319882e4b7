"""Re-identification for direct care: a practice's own list, matched to a cohort's members registered there.

The one matching rule, shared by ``POST /api/reidentification`` and ``phm reidentify``:

1. the practice supplies its registered list (a CSV of NHS numbers, as GP systems export it);
2. each number is checked (ten digits, Modulus 11); invalid ones are counted, never echoed;
3. the valid numbers are pseudonymised in memory with the store's key (the same keyed HMAC as ingest);
4. the cohort's members at the as_of date registered at that practice in the store are read, and only those
   whose pseudonym the list produced are kept.

So only NHS numbers the practice itself supplied ever come back, and only for people the store places at that
practice. Nothing here writes the list, a number or a pseudonym anywhere: the caller holds the matched
(pseudonym -> NHS number) pairs in memory (the web app encrypts them; the command writes the worklist).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date

import narwhals as nw
import polars as pl
import pyarrow as pa

from openphm.engine import Engine
from openphm.errors import InputError, StoreError
from openphm.explanations import ExplanationsFile, load_explanations
from openphm.ingest.pseudonymise import KeyedHash
from openphm.ingest.rules import nhs_number_valid

MAX_LIST_BYTES = 4 * 1024 * 1024
"""The largest list accepted (a practice of 100,000 people with spaced numbers is about 1.4 MB)."""
HEADER = "nhs_number"
_IDENTIFIER = re.compile(r"\d[\d ]{8,}\d")
"""Ten or more digits (spaces allowed): what an NHS number typed into a purpose would look like."""

WORKLIST_COLUMNS = (
    "nhs_number",
    "segment",
    "segment_flags",
    "segment_explained",
    "need_tier",
    "need_tier_name",
    "need_tier_explained",
    "qrisk3",
    "efi",
    "efi_category",
    "hfrs",
    "admission_risk_centile",
    "acg_png",
    "cohorts",
    "cohorts_explained",
)
"""One row per matched person: the NHS number the practice supplied, what the store holds about them, and the
plain-English words for each group. ``acg_png`` (a licensed ACG grouping) is carried through as the store holds
it, never recomputed; it is empty when the store has none."""


@dataclass(frozen=True)
class NhsList:
    """A parsed list: the distinct valid numbers (spaces removed) and the counts of what was sent."""

    numbers: tuple[str, ...]
    submitted: int
    invalid: int

    def __repr__(self) -> str:  # never show the numbers, even in a traceback or a debugger
        return f"NhsList(submitted={self.submitted}, invalid={self.invalid}, valid={len(self.numbers)})"


@dataclass(frozen=True)
class Match:
    """The result of matching a list: the as_of read, and the matched pseudonym -> NHS number pairs."""

    as_of: date
    pairs: dict[str, str]

    def __repr__(self) -> str:  # never show the pairs, even in a traceback or a debugger
        return f"Match(as_of={self.as_of}, matched={len(self.pairs)})"


def check_purpose(text: str) -> str:
    """The purpose of a request, as the audit log records it: 10-500 characters and no run of ten digits (an NHS
    number typed into it would otherwise enter the audit chain)."""
    purpose = text.strip()
    if not 10 <= len(purpose) <= 500:
        raise InputError("the purpose must say why in 10 to 500 characters")
    if _IDENTIFIER.search(purpose):
        raise InputError("the purpose must not contain an NHS number or any other identifier")
    return purpose


def read_list(data: bytes) -> NhsList:
    """The NHS numbers of a practice's list: a CSV with a column ``nhs_number`` (or ``NHS Number``), or one column
    with or without a header. Spaces inside a number are allowed ('943 476 5919'); blank lines are skipped. A
    problem is one line that never quotes the file."""
    if len(data) > MAX_LIST_BYTES:
        raise InputError(f"the list is larger than {MAX_LIST_BYTES // (1024 * 1024)} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("the list is not UTF-8 text (export it as CSV)") from None
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if any(cell.strip() for cell in row)]
    except csv.Error:
        raise InputError("the list is not a readable CSV file") from None
    if not rows:
        raise InputError("the list is empty")
    header = [cell.strip().lower().replace(" ", "_") for cell in rows[0]]  # 'NHS Number', as GP systems head it
    if HEADER in header:
        column, body = header.index(HEADER), rows[1:]
    elif len(header) == 1:
        column = 0
        first = rows[0][0].replace(" ", "").strip()
        body = rows if first.isdigit() else rows[1:]  # a one-column file's first line is a header unless a number
    else:
        raise InputError(f"the list has {len(header)} columns and none is named '{HEADER}'")
    values = [row[column].replace(" ", "").strip() if column < len(row) else "" for row in body]
    frame = nw.from_native(pl.DataFrame({"n": values}, schema={"n": pl.String}))
    checked = frame.with_columns(valid=nhs_number_valid(nw.col("n")))
    valid = checked.filter(nw.col("valid"))["n"].to_list()
    return NhsList(tuple(dict.fromkeys(valid)), len(values), len(values) - len(valid))


def practice_members(eng: Engine, cohort: str, practice_code: str, as_of: date | None = None) -> tuple[date, set[str]]:
    """The pseudonyms of ``cohort``'s members at ``as_of`` (default the store's latest) registered at
    ``practice_code`` in the store's population table."""
    for table in ("cohort_member", "population"):
        if not eng.has_table(table):
            raise StoreError(f"the store has no {table} table; run 'phm run' first")
    population = eng.table("population")
    if as_of is None:
        as_of = population.select(nw.col("as_of").max()).collect(backend="polars").item()
        if as_of is None:
            raise StoreError("the store's population table is empty")
    registered = population.filter(
        (nw.col("as_of") == nw.lit(as_of)) & (nw.col("practice_code") == nw.lit(practice_code))
    ).select("person_id")
    members = (
        eng.table("cohort_member")
        .filter((nw.col("cohort") == nw.lit(cohort)) & (nw.col("as_of") == nw.lit(as_of)))
        .select("person_id")
        .join(registered, on="person_id", how="inner")
        .unique()
        .collect(backend="polars")
    )
    return as_of, set(members["person_id"].to_list())


def match(
    eng: Engine, key: bytes, cohort: str, practice_code: str, numbers: tuple[str, ...], as_of: date | None = None
) -> Match:
    """The matching rule: the pseudonyms of ``numbers`` (under ``key``) among the cohort's members registered at
    the practice. The list is pseudonymised in memory; only matched pairs are returned."""
    when, members = practice_members(eng, cohort, practice_code, as_of)
    pseudonyms = KeyedHash(key)(list(numbers))
    pairs = {p: n for p, n in zip(pseudonyms, numbers, strict=True) if p is not None and p in members}
    return Match(when, pairs)


def worklist(
    eng: Engine, matched: Match, explanations: ExplanationsFile | None = None, *, identified: bool = True
) -> pa.Table:
    """The worklist of ``matched``: :data:`WORKLIST_COLUMNS`, one row per person, highest admission risk first.

    With ``identified`` False the first column is the store's pseudonym (``person_id``) instead of the NHS number
    (the person view's and the FHIR bundle's internal use)."""
    words = explanations or load_explanations()
    people = pl.DataFrame({"person_id": list(matched.pairs)}, schema={"person_id": pl.String})
    for table, columns in (
        ("segment", None),
        ("risk", ("qrisk3", "efi", "efi_category", "hfrs")),
        ("admission_risk", ("risk_centile",)),
    ):
        people = people.join(_read(eng, table, columns, matched), on="person_id", how="left")
    memberships = _memberships(eng, matched, words)
    people = people.join(memberships, on="person_id", how="left")
    flags = [c for c, t in people.schema.items() if t == pl.Boolean]  # the segment table's subsegment flags
    segments, tiers = words.segments, words.need_tiers
    rows = []
    for row in people.iter_rows(named=True):
        segment, tier = row.get("segment"), row.get("need_tier")
        rows.append(
            {
                "nhs_number": matched.pairs[row["person_id"]] if identified else row["person_id"],
                "segment": segment,
                "segment_flags": "; ".join(f for f in flags if row.get(f)) or None,
                "segment_explained": segments[segment].text() if segment in segments else None,
                "need_tier": tier,
                "need_tier_name": tiers[tier].title if tier in tiers else None,
                "need_tier_explained": tiers[tier].text() if tier in tiers else None,
                "qrisk3": row.get("qrisk3"),
                "efi": row.get("efi"),
                "efi_category": row.get("efi_category"),
                "hfrs": row.get("hfrs"),
                "admission_risk_centile": row.get("risk_centile"),
                "acg_png": None if row.get("acg_png") is None else str(row["acg_png"]),
                "cohorts": row.get("cohorts"),
                "cohorts_explained": row.get("cohorts_explained"),
            }
        )
    schema = {
        "nhs_number": pl.String,
        "segment": pl.String,
        "segment_flags": pl.String,
        "segment_explained": pl.String,
        "need_tier": pl.Int64,
        "need_tier_name": pl.String,
        "need_tier_explained": pl.String,
        "qrisk3": pl.Float64,
        "efi": pl.Float64,
        "efi_category": pl.String,
        "hfrs": pl.Float64,
        "admission_risk_centile": pl.Int64,
        "acg_png": pl.String,
        "cohorts": pl.String,
        "cohorts_explained": pl.String,
    }
    frame = pl.DataFrame(rows, schema=schema, orient="row").sort(
        ["admission_risk_centile", "nhs_number"], descending=[True, False], nulls_last=True
    )
    return frame.select(WORKLIST_COLUMNS).to_arrow()


def _read(eng: Engine, table: str, columns: tuple[str, ...] | None, matched: Match) -> pl.DataFrame:
    """``table``'s rows of the matched people at the match's as_of (every column when ``columns`` is None)."""
    if not eng.has_table(table):
        return pl.DataFrame({"person_id": []}, schema={"person_id": pl.String})
    frame = eng.table(table).filter(
        (nw.col("as_of") == nw.lit(matched.as_of)) & nw.col("person_id").is_in(list(matched.pairs))
    )
    if columns is not None:
        frame = frame.select("person_id", *columns)
    native: pl.DataFrame = nw.to_native(frame.drop("as_of", strict=False).collect(backend="polars"))
    return native


def _memberships(eng: Engine, matched: Match, words: ExplanationsFile) -> pl.DataFrame:
    """Per person: every cohort they are in at the as_of with its reasons, and the cohorts' plain words."""
    frame = (
        eng.table("cohort_member")
        .filter((nw.col("as_of") == nw.lit(matched.as_of)) & nw.col("person_id").is_in(list(matched.pairs)))
        .select("person_id", "cohort", "reasons")
        .collect(backend="polars")
    )
    native: pl.DataFrame = nw.to_native(frame).sort("person_id", "cohort")
    explained = {name: f"{entry.title}: {entry.text()}" for name, entry in words.cohorts.items()}
    return native.group_by("person_id", maintain_order=True).agg(
        cohorts=pl.format("{} ({})", "cohort", pl.col("reasons").fill_null("")).str.join("; "),
        cohorts_explained=pl.col("cohort").replace_strict(explained, default=None).drop_nulls().str.join(" | "),
    )
