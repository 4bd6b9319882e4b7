"""The input contract, version 1, declared once.

This declaration drives the reader (which columns must be present), validation (which rule each value
must meet, and the quarantine reason when it does not), the typed tables written to the store, and the
generated page ``docs/input-contract.md``. Change the contract here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypedDict

CONTRACT_VERSION = "1"

ColumnType = Literal["str", "date", "float", "int", "bool"]

ID_COLUMNS = ("nhs_number", "person_id")
"""A person-level table identifies its person by exactly one of these."""


@dataclass(frozen=True)
class Column:
    """One column of a source table and the rule its values must meet."""

    name: str
    type: ColumnType
    nullable: bool = False
    description: str = ""
    codes: tuple[str, ...] | None = None
    """The allowed values (after trimming, compared case-sensitively)."""
    pattern: str | None = None
    """A regular expression the whole trimmed value must match (RE2/Java/Rust-compatible)."""
    pattern_text: str = ""
    """How the pattern reads to a person, for messages and docs."""
    minimum: float | None = None
    maximum: float | None = None
    cost: bool = False
    """A cost in GBP: negative values are quarantined as ``negative_cost``."""

    def rule_text(self) -> str:
        parts: list[str] = []
        if self.codes is not None:
            parts.append("one of " + ", ".join(self.codes))
        if self.pattern_text:
            parts.append(self.pattern_text)
        if self.minimum is not None and self.maximum is not None:
            parts.append(f"{self.minimum:g} to {self.maximum:g}")
        if self.cost:
            parts.append("not negative")
        if self.type == "date":
            parts.append("YYYY-MM-DD, from 1900-01-01 up to the extract date")
        if self.type == "bool":
            parts.append("true/false (also 1/0, yes/no, y/n)")
        return "; ".join(parts)


@dataclass(frozen=True)
class Table:
    """One table of the contract: its columns and its row-level rules."""

    name: str
    description: str
    columns: tuple[Column, ...]
    person_level: bool = True
    key: tuple[str, ...] = ()
    """Columns whose combination must be unique; later repeats are quarantined as ``duplicate_key``."""
    date_order: tuple[tuple[str, str], ...] = ()
    """(earlier, later) pairs: ``later`` may not precede ``earlier``."""
    parent: tuple[str, str] | None = None
    """(table, column): each row must belong to a loaded row of that table (``orphan_*``)."""
    required: bool = False
    reference: bool = False
    """A reference table (shipped default that a source folder may override)."""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if not c.nullable)


_ADMISSION_METHODS = (
    "11",
    "12",
    "13",
    "21",
    "22",
    "23",
    "24",
    "25",
    "28",
    "2A",
    "2B",
    "2C",
    "2D",
    "31",
    "32",
    "81",
    "82",
    "83",
    "99",
)
_ETHNICITY = tuple("ABCDEFGHJKLMNPRSZ")


class _Pattern(TypedDict):
    """A code column's format, shared by the columns holding codes of one system."""

    pattern: str
    pattern_text: str


_SNOMED = _Pattern(pattern=r"^[0-9]{6,18}$", pattern_text="a SNOMED CT concept id of 6-18 digits")
_ICD10 = _Pattern(
    pattern=r"^[A-Za-z][0-9][0-9A-Za-z.\-+*†]{0,6}$",
    pattern_text="an ICD-10 code such as I500 or I50.0 (dots and X/-/D/A/dagger/asterisk markers allowed)",
)


def _id() -> Column:
    return Column("person_id", "str", description="pseudonym of the person (or nhs_number, see above)")


def _cost(name: str = "cost") -> Column:
    return Column(name, "float", nullable=True, cost=True, description="GBP")


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "person",
            "One row per person: the population the system serves.",
            (
                _id(),
                Column("date_of_birth", "date", description="kept to the month in the store"),
                Column("sex", "str", codes=("F", "M", "U"), description="F, M or U (unknown/indeterminate)"),
                Column(
                    "ethnicity",
                    "str",
                    nullable=True,
                    codes=_ETHNICITY,
                    description="NHS ethnic category; Z or blank = not stated",
                ),
                Column(
                    "lsoa_code",
                    "str",
                    nullable=True,
                    pattern=r"^[EW]01[0-9]{6}$",
                    pattern_text="an LSOA 2011 code (E01 or W01 and six digits)",
                ),
                Column(
                    "practice_code",
                    "str",
                    nullable=True,
                    pattern=r"^[A-Za-z0-9]{3,8}$",
                    pattern_text="an ODS code of 3-8 letters and digits",
                ),
                Column("registration_start", "date", nullable=True),
                Column("registration_end", "date", nullable=True),
                Column("date_of_death", "date", nullable=True),
                Column(
                    "acg_png",
                    "int",
                    nullable=True,
                    minimum=1,
                    maximum=11,
                    description="Johns Hopkins ACG Patient Need Group, carried through, never computed",
                ),
            ),
            key=("person_id",),
            date_order=(
                ("date_of_birth", "date_of_death"),
                ("registration_start", "registration_end"),
                ("date_of_birth", "registration_end"),
            ),
            required=True,
        ),
        Table(
            "opt_out",
            "People with a national data opt-out (a list held locally); removed under the purposes the "
            "policy applies it to. Type 1 objections are read from gp_event instead. Never stored.",
            (_id(),),
        ),
        Table(
            "opt_out_cleared",
            "The national check's cleared list: the people who may be used (no national data opt-out). When "
            "supplied and the purpose applies it, everyone not on it is removed. Never stored.",
            (
                _id(),
                Column(
                    "checked_on",
                    "date",
                    description="date of the national check; the latest is recorded, and an old check warns",
                ),
            ),
        ),
        Table(
            "gp_event",
            "The primary care coded record.",
            (
                _id(),
                Column("event_date", "date"),
                Column("snomed_code", "str", **_SNOMED),
                Column("value", "float", nullable=True, description="numeric result (BMI, blood pressure, ...)"),
                Column("unit", "str", nullable=True),
            ),
        ),
        Table(
            "gp_medication",
            "Medicines issued in primary care.",
            (
                _id(),
                Column("issue_date", "date"),
                Column("dmd_code", "str", pattern=r"^[0-9]{6,20}$", pattern_text="a dm+d concept id (digits)"),
                Column(
                    "bnf_code",
                    "str",
                    nullable=True,
                    pattern=r"^[0-9A-Za-z]{2,15}$",
                    pattern_text="a BNF code of 2-15 letters and digits",
                ),
            ),
        ),
        Table(
            "apc_episode",
            "Hospital admitted patient care, one row per consultant episode; admissions are counted as spells.",
            (
                _id(),
                Column("episode_id", "str"),
                Column(
                    "spell_id",
                    "str",
                    nullable=True,
                    description=(
                        "the hospital provider spell (stay) the episode belongs to, e.g. SUS+/HES SUSSPELLID;"
                        " blank: derived at ingest from the person's contiguous episodes at the provider"
                        " (docs/analytics.md#admissions-are-spells)"
                    ),
                ),
                Column("admission_date", "date", description="the episode's start (HES: the spell's, repeated)"),
                Column("discharge_date", "date", nullable=True, description="null while in hospital"),
                Column(
                    "discharge_method",
                    "str",
                    nullable=True,
                    codes=("1", "2", "3", "4", "5", "8", "9"),
                    description=(
                        "HES DISMETH: 1-5 the patient left hospital (discharged, died, stillbirth) and the spell"
                        " ended; 8 still in hospital (a new consultant took over); 9 not known"
                    ),
                ),
                Column(
                    "admission_method",
                    "str",
                    codes=_ADMISSION_METHODS,
                    description=(
                        "HES code: 11-13 elective, 21-25, 28, 2A, 2B, 2D emergency (2C, a baby born at home as"
                        " intended, is not counted as one), 31-32 maternity, 81-83 other, 99 not known (the data"
                        " dictionary's default code: counted as an admission, neither elective nor emergency)"
                    ),
                ),
                Column("provider_code", "str", nullable=True),
                _cost(),
            ),
            key=("episode_id",),
            date_order=(("admission_date", "discharge_date"),),
        ),
        Table(
            "apc_diagnosis",
            "Diagnoses of admitted patient care episodes, one row per coded diagnosis.",
            (
                Column("episode_id", "str"),
                Column("position", "int", minimum=1, maximum=99, description="1 = primary diagnosis"),
                Column("icd10_code", "str", **_ICD10),
            ),
            person_level=False,
            key=("episode_id", "position"),
            parent=("apc_episode", "episode_id"),
        ),
        Table(
            "apc_procedure",
            "Procedures of admitted patient care episodes.",
            (
                Column("episode_id", "str"),
                Column("position", "int", minimum=1, maximum=99),
                Column(
                    "opcs4_code",
                    "str",
                    pattern=r"^[A-Za-z][0-9]{2}\.?[0-9]?$",
                    pattern_text="an OPCS-4 code such as X402 or X40.2",
                ),
            ),
            person_level=False,
            key=("episode_id", "position"),
            parent=("apc_episode", "episode_id"),
        ),
        Table(
            "ae_attendance",
            "Emergency care attendances.",
            (
                _id(),
                Column("attendance_id", "str"),
                Column("arrival_date", "date"),
                Column("diagnosis_snomed", "str", nullable=True, **_SNOMED),
                Column("acuity", "int", nullable=True, minimum=1, maximum=5),
                _cost(),
            ),
            key=("attendance_id",),
        ),
        Table(
            "op_appointment",
            "Outpatient appointments.",
            (
                _id(),
                Column("appointment_id", "str"),
                Column("appointment_date", "date"),
                Column("attended", "bool"),
                Column("first_attendance", "bool", nullable=True),
                Column(
                    "treatment_function_code",
                    "str",
                    nullable=True,
                    pattern=r"^[0-9A-Za-z]{3}$",
                    pattern_text="a 3-character treatment function code",
                ),
                _cost(),
            ),
            key=("appointment_id",),
        ),
        Table(
            "community_contact",
            "Community health service contacts.",
            (_id(), Column("contact_date", "date"), Column("service_type", "str"), _cost()),
        ),
        Table(
            "mh_contact",
            "Mental health service contacts.",
            (_id(), Column("contact_date", "date"), Column("service_type", "str"), _cost()),
        ),
        Table(
            "social_care_service",
            "Adult social care long-term support.",
            (
                _id(),
                Column(
                    "service_type",
                    "str",
                    codes=("residential", "nursing", "home_care", "day_care", "direct_payment", "other"),
                ),
                Column("start_date", "date"),
                Column("end_date", "date", nullable=True),
                _cost("weekly_cost"),
            ),
            date_order=(("start_date", "end_date"),),
        ),
        Table(
            "waiting_list",
            "Elective waiting list entries (referral to treatment clock starts).",
            (
                _id(),
                Column("referral_date", "date", description="clock start"),
                Column("removal_date", "date", nullable=True, description="null = still waiting"),
                Column(
                    "treatment_function_code",
                    "str",
                    pattern=r"^[0-9A-Za-z]{3}$",
                    pattern_text="a 3-character treatment function code",
                ),
                Column("provider_code", "str", nullable=True),
            ),
            date_order=(("referral_date", "removal_date"),),
        ),
        Table(
            "lsoa",
            "Reference: deprivation of each LSOA. Default: IMD 2019 for all 32,844 English LSOAs.",
            (
                Column("lsoa_code", "str", pattern=r"^[EW]01[0-9]{6}$", pattern_text="an LSOA 2011 code"),
                Column("imd_decile", "int", minimum=1, maximum=10, description="1 = most deprived"),
                Column("la_code", "str", nullable=True),
                Column("la_name", "str", nullable=True),
            ),
            person_level=False,
            key=("lsoa_code",),
            reference=True,
        ),
        Table(
            "practice",
            "Reference: the geography ladder national > region > ICB > sub-ICB > PCN > practice.",
            (
                Column("practice_code", "str", pattern=r"^[A-Za-z0-9]{3,8}$", pattern_text="an ODS code"),
                Column("practice_name", "str", nullable=True),
                Column("pcn_code", "str", nullable=True),
                Column("pcn_name", "str", nullable=True),
                Column("sub_icb_code", "str", nullable=True),
                Column("sub_icb_name", "str", nullable=True),
                Column("icb_code", "str", nullable=True),
                Column("icb_name", "str", nullable=True),
                Column("region_code", "str", nullable=True),
                Column("region_name", "str", nullable=True),
            ),
            person_level=False,
            key=("practice_code",),
            reference=True,
        ),
    )
}
"""Every table of the contract, in processing order (a parent before its children)."""
