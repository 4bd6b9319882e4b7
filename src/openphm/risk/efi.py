"""The electronic Frailty Index (Clegg et al., Age and Ageing 2016): deficits present / 36.

35 deficits are coded conditions (the ``efi_*`` definitions of the register), each counted when it has been
recorded in primary care at any time up to the as_of date, as in the original eFI, which looks at the whole
primary care record (an A&E diagnosis with the same SNOMED CT concept does not count). The 36th is
polypharmacy: at least five distinct medicines issued in the 365 days to as_of. A medicine is a BNF
chemical substance (the first nine characters of the BNF code) when the issue carries a BNF code in a drug
chapter (1-15), otherwise its dm+d code: strengths, forms and repeat issues of one drug are one medicine,
and dressings, appliances and other items of BNF chapters 18-23 are not medicines.

The eFI was developed for people aged 65 and over; it is computed here for every adult and ``efi_eligible``
marks the 65+. Deficits, categories and the polypharmacy rule are package data (``content/scores/efi``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import narwhals as nw
import pyarrow as pa
from pydantic import Field

from openphm.content import content_path, csv_rows
from openphm.content.validation import ContentError, ContentModel, read_yaml, validated
from openphm.engine import distinct
from openphm.vocabulary import PERSON_AS_OF

POLYPHARMACY = "polypharmacy"
Frame = Callable[[pa.Table], nw.LazyFrame]


@dataclass(frozen=True)
class EfiSpec:
    """The eFI as data: deficit -> definition id (None for polypharmacy), category upper bounds, settings."""

    deficits: dict[str, str | None]
    categories: tuple[tuple[str, float | None], ...]
    min_medicines: int
    polypharmacy_days: int
    bnf_chapters: tuple[str, ...]
    adult_age: int
    eligible_age: int

    @property
    def definitions(self) -> dict[str, str]:
        """Definition id -> deficit, for the coded deficits."""
        return {d: k for k, d in self.deficits.items() if d}


class EfiSettings(ContentModel):
    """``content/scores/efi/settings.yaml``: the eFI's polypharmacy deficit and the ages it is computed for."""

    version: str | int | float
    polypharmacy_min_medicines: int = Field(ge=1, description="Distinct medicines issued ...")
    polypharmacy_days: int = Field(ge=1, description="... in this many days to as_of.")
    polypharmacy_bnf_chapters: tuple[str, ...] = Field(description="Two-digit BNF chapters that count.")
    adult_age: int = Field(ge=0, description="eFI is computed from this age (null below).")
    eligible_age: int = Field(ge=0, description="The age the eFI was developed and validated in (efi_eligible).")


@cache
def spec() -> EfiSpec:
    """The shipped eFI specification."""
    folder = content_path("scores", "efi")
    deficits = {r["deficit"]: r["definition"] or None for r in csv_rows(folder.joinpath("deficits.csv"))}
    categories = tuple(
        (r["category"], float(r["upper"]) if r["upper"] else None) for r in csv_rows(folder.joinpath("categories.csv"))
    )
    source = "scores/efi/settings.yaml"
    settings = validated(
        EfiSettings, read_yaml(folder.joinpath("settings.yaml"), source, ContentError), source, ContentError
    )
    return EfiSpec(
        deficits,
        categories,
        settings.polypharmacy_min_medicines,
        settings.polypharmacy_days,
        settings.polypharmacy_bnf_chapters,
        settings.adult_age,
        settings.eligible_age,
    )


def medicines(medication: nw.LazyFrame, window: nw.LazyFrame, efi: EfiSpec) -> nw.LazyFrame:
    """(person_id, as_of, medicines): distinct medicines issued in ``window`` (as_of, since), since exclusive."""
    bnf = nw.col("bnf_code")  # canonical since ingest
    medicine = (
        nw.when(nw.col("bnf_code").is_null())
        .then(nw.concat_str([nw.lit("dmd:"), nw.col("dmd_code").cast(nw.String)]))
        .when(bnf.str.slice(0, 2).is_in(list(efi.bnf_chapters)))
        .then(nw.concat_str([nw.lit("bnf:"), bnf.str.slice(0, 9)]))
    )
    return (
        medication.select("person_id", "issue_date", medicine.alias("medicine"))
        .filter(~nw.col("medicine").is_null())
        .join(window, how="cross")
        .filter((nw.col("issue_date") > nw.col("since")) & (nw.col("issue_date") <= nw.col("as_of")))
        .select("person_id", "as_of", "medicine")
        .pipe(distinct)
        .group_by(*PERSON_AS_OF)
        .agg(nw.col("medicine").count().alias("medicines"))
    )


def efi(
    population: nw.LazyFrame,
    register: nw.LazyFrame | None,
    issued: nw.LazyFrame | None,
    frame: Frame,
    efi: EfiSpec | None = None,
) -> nw.LazyFrame:
    """One row per population row: efi_deficits, efi, efi_category, polypharmacy, efi_eligible.

    ``register`` is the register table (None: efi, efi_deficits and efi_category are null, not available);
    ``issued`` is :func:`medicines`' output (None: no medication table, so ``polypharmacy`` is null and the
    eFI counts the 35 coded deficits only). efi, efi_deficits and efi_category are null below the adult age.
    """
    efi = efi or spec()
    keys = population.select("person_id", "as_of", "age")
    definitions = frame(
        pa.table({"definition": pa.array(sorted(efi.definitions), pa.string())})  # one row per coded deficit
    )
    coded = keys.head(0).select("person_id", "as_of", nw.lit(0, nw.Int64).alias("coded"))
    if register is not None:
        coded = (
            register.filter(nw.col("from_gp"))
            .join(definitions, on="definition", how="inner")
            .select("person_id", "as_of", "definition")
            .pipe(distinct)
            .group_by(*PERSON_AS_OF)
            .agg(nw.col("definition").count().cast(nw.Int64).alias("coded"))
        )
    poly = keys.head(0).select("person_id", "as_of", nw.lit(0, nw.Int64).alias("medicines"))
    polypharmacy = nw.lit(None, nw.Boolean)
    if issued is not None:
        poly = issued.select("person_id", "as_of", nw.col("medicines").cast(nw.Int64))
        polypharmacy = nw.col("medicines").fill_null(0) >= efi.min_medicines
    scored = (nw.col("age") >= efi.adult_age) & nw.lit(register is not None)
    deficits = nw.col("coded").fill_null(0) + nw.when(nw.col("polypharmacy")).then(1).otherwise(0)
    total = len(efi.deficits)
    category = nw.when(nw.col("efi").is_null()).then(nw.lit(None, nw.String))
    for name, upper in efi.categories:
        category = category.when(nw.col("efi") <= upper).then(nw.lit(name)) if upper is not None else category
    worst = efi.categories[-1][0]
    return (
        keys.join(coded, on=list(PERSON_AS_OF), how="left")
        .join(poly, on=list(PERSON_AS_OF), how="left")
        .with_columns(polypharmacy.alias("polypharmacy"))
        .with_columns(nw.when(scored).then(deficits.cast(nw.Int64)).alias("efi_deficits"))
        .with_columns((nw.col("efi_deficits") / total).alias("efi"))
        .with_columns(category.otherwise(nw.lit(worst)).alias("efi_category"))
        .select(
            "person_id",
            "as_of",
            "efi",
            "efi_deficits",
            "efi_category",
            "polypharmacy",
            (nw.col("age") >= efi.eligible_age).alias("efi_eligible"),
        )
    )
