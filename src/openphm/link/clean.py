"""Read one identifiable extract and clean it into the columns the linkage compares.

Two sources write the same person differently: ``José O'Brien`` and ``JOSE OBRIEN``, ``ls62ab`` and
``LS6 2AB``, ``04/03/2001`` and ``2001-03-04``. Cleaning makes those equal before any comparison, so the
model's levels measure real disagreement rather than formatting. Values that cannot be read (an NHS number
failing Modulus 11, a postcode of no UK shape, a date in neither form) become empty and are counted, never
guessed. Errors name the file, the column and a row number, never a value (the files are identifiable).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import narwhals as nw
import polars as pl

from openphm.content import content_path
from openphm.errors import InputError
from openphm.ingest.rules import nhs_number_valid

ID = "record_id"
COLUMNS = ("record_id", "nhs_number", "given_name", "family_name", "date_of_birth", "sex", "postcode")
"""The input columns; only ``record_id`` must be present and filled in every row."""
LSOA_COLUMNS = ("lsoa_code", "lsoa", "lsoa11")
IMD = "imd_quintile"

POSTCODE = r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$"
SEXES = {"M": "M", "MALE": "M", "1": "M", "F": "F", "FEMALE": "F", "2": "F"}


@dataclass(frozen=True)
class Source:
    """One cleaned extract, with how many values each column had and how many could be used."""

    name: str
    frame: pl.DataFrame
    present: dict[str, int]
    usable: dict[str, int]
    absent_columns: tuple[str, ...]

    @property
    def rows(self) -> int:
        return self.frame.height


def read_source(path: Path, name: str) -> Source:
    """The extract at ``path`` as text, checked and cleaned; ``name`` (left/right) labels its errors."""
    raw = _read(path, name)
    present = {c: int(raw[c].is_not_null().sum()) for c in COLUMNS if c in raw.columns}
    absent = tuple(c for c in COLUMNS if c not in raw.columns)
    raw = raw.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in absent)
    frame = clean(raw)
    usable = {c: int(frame[c].is_not_null().sum()) for c in COLUMNS}
    return Source(name, frame, present, usable, absent)


def _read(path: Path, name: str) -> pl.DataFrame:
    where = f"{name} file {path.name}"
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8", truncate_ragged_lines=False)
    except (OSError, pl.exceptions.PolarsError, UnicodeDecodeError):
        raise InputError(f"{where}: cannot be read as a UTF-8 CSV file") from None
    lower = {c: c.strip().lower() for c in frame.columns}
    if len(set(lower.values())) != len(lower):
        raise InputError(f"{where}: a column name appears twice in the header")
    frame = frame.rename(lower)
    if ID not in frame.columns:
        raise InputError(f"{where}: no {ID} column")
    if frame.height == 0:
        raise InputError(f"{where}: no records")
    keep = [c for c in (*COLUMNS, IMD, *LSOA_COLUMNS) if c in frame.columns]
    frame = frame.select(pl.col(c).str.strip_chars().replace("", None).alias(c) for c in keep)
    rows = frame.with_row_index("row", offset=1)
    missing = rows.filter(pl.col(ID).is_null())
    if missing.height:
        raise InputError(f"{where}: row {missing['row'][0]} has no {ID} ({missing.height:,} rows in all)")
    repeated = rows.filter(pl.col(ID).is_duplicated()).group_by(ID).agg(pl.col("row").sort()).sort("row")
    if repeated.height:
        first = repeated["row"][0]
        raise InputError(
            f"{where}: {ID} is not unique: rows {first[0]} and {first[1]} share one "
            f"({repeated.height:,} repeated values in all)"
        )
    return frame


def clean(raw: pl.DataFrame) -> pl.DataFrame:
    """The comparison columns of a checked extract (every column text, blanks null)."""
    frame = raw.with_columns(
        _name("given_name"),
        _name("family_name"),
        pl.col("nhs_number").str.replace_all(r"[\s-]", ""),
        _date("date_of_birth"),
        pl.col("sex").str.to_uppercase().replace_strict(SEXES, default=None, return_dtype=pl.String),
        pl.col("postcode").str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "").alias("postcode_compact"),
    )
    valid = nw.from_native(frame).select(nhs_number_valid(nw.col("nhs_number")).alias("ok")).to_native()["ok"]
    outward = pl.col("postcode_compact").str.extract(POSTCODE, 1)
    inward = pl.col("postcode_compact").str.extract(POSTCODE, 2)
    frame = frame.with_columns(
        pl.when(valid).then(pl.col("nhs_number")).alias("nhs_number"),
        pl.concat_str(outward, pl.lit(" "), inward).alias("postcode"),
        pl.concat_str(outward, pl.lit(" "), inward.str.slice(0, 1)).alias("postcode_sector"),
        outward.alias("postcode_district"),
        pl.col("date_of_birth").str.slice(0, 4).alias("birth_year"),
        _soundex("given_name", frame).alias("given_soundex"),
        _soundex("family_name", frame).alias("family_soundex"),
        _imd(raw).alias(IMD),
    )
    return frame.select(
        *COLUMNS,
        "given_soundex",
        "family_soundex",
        "birth_year",
        "postcode_sector",
        "postcode_district",
        IMD,
    )


def _name(column: str) -> pl.Expr:
    """Upper case, accents stripped (NFKD, marks dropped), hyphens as spaces, other punctuation removed."""
    return (
        pl.col(column)
        .str.normalize("NFKD")
        .str.replace_all(r"\p{M}", "")
        .str.to_uppercase()
        .str.replace_all(r"[-_]", " ")
        .str.replace_all(r"[^\p{L} ]", "")
        .str.replace_all(r" +", " ")
        .str.strip_chars()
        .replace("", None)
        .alias(column)
    )


def _date(column: str) -> pl.Expr:
    """ISO ``YYYY-MM-DD`` text from ISO or ``dd/mm/yyyy``; an impossible or other date is null."""
    text = pl.col(column).str.slice(0, 10)
    parsed = pl.coalesce(text.str.to_date("%Y-%m-%d", strict=False), text.str.to_date("%d/%m/%Y", strict=False))
    return parsed.dt.to_string("%Y-%m-%d").alias(column)


def soundex(name: str) -> str:
    """American Soundex of the letters of ``name`` (``ROBERT`` and ``RUPERT`` -> R163): a blocking key that
    survives most one-letter typing errors after the first letter."""
    codes = {c: str(d) for d, group in enumerate(("AEIOUYHW", "BFPV", "CGJKQSXZ", "DT", "L", "MN", "R")) for c in group}
    letters = [c for c in name if c in codes]
    if not letters:
        return ""
    out, last = letters[0], codes[letters[0]]
    for letter in letters[1:]:
        code = codes[letter]
        if code != "0" and code != last:
            out += code
        if letter not in "HW":  # H and W do not separate two equal codes; vowels do
            last = code
    return (out + "000")[:4]


def _soundex(column: str, frame: pl.DataFrame) -> pl.Expr:
    """Soundex computed once per distinct name (few thousand) and mapped back to every row."""
    names = frame[column].drop_nulls().unique().to_list()
    mapping = {n: soundex(n) or None for n in names}
    return pl.col(column).replace_strict(mapping, default=None, return_dtype=pl.String)


def _imd(raw: pl.DataFrame) -> pl.Expr:
    """IMD quintile (1 most deprived) as given, else from an LSOA code via the shipped IMD 2019 table."""
    if IMD in raw.columns:
        quintile = pl.col(IMD).cast(pl.Int64, strict=False)
        return pl.when(quintile.is_between(1, 5)).then(quintile)
    lsoa = next((c for c in LSOA_COLUMNS if c in raw.columns), None)
    if lsoa is None:
        return pl.lit(None, dtype=pl.Int64)
    deciles = lsoa_deciles()
    return ((pl.col(lsoa).str.to_uppercase().replace_strict(deciles, default=None) + 1) // 2).cast(pl.Int64)


def lsoa_deciles() -> dict[str, int]:
    """LSOA 2011 code -> IMD 2019 decile, from the table ``phm ingest`` ships (Open Government Licence)."""
    with content_path("reference", "lsoa_imd2019.csv.gz").open("rb") as handle:
        table = pl.read_csv(gzip.decompress(handle.read()), columns=["lsoa_code", "imd_decile"])
    return dict(zip(table["lsoa_code"].to_list(), table["imd_decile"].to_list(), strict=True))
