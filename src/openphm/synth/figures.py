"""Realism figures of a generated folder, computed from its files, next to the reference figures.

The figures are those of docs/clinical-reference.md section 7: QOF recorded prevalence (codes of the
package's own lists in the primary care record, among people registered on the last day of the window,
with QOF's age limits), age structure and ethnicity of that population, and activity, deaths and births
per 1,000 person-years on the list. Used by the tests, the benchmark and ``docs/synth.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from openphm.synth.codes import definitions

QOF = {
    "hypertension": ("hypertension", 0),
    "diabetes": ("diabetes", 17),
    "asthma": ("asthma", 6),
    "ckd_3_5": ("chronic_kidney_disease", 18),
    "cancer": ("cancer", 0),
    "chd": ("coronary_heart_disease", 0),
    "atrial_fibrillation": ("atrial_fibrillation", 0),
    "copd": ("copd", 0),
    "stroke_tia": ("cerebrovascular_disease", 0),
    "heart_failure": ("heart_failure", 0),
    "smi": ("serious_mental_illness", 0),
    "dementia": ("dementia", 0),
    "epilepsy": ("epilepsy", 18),
    "rheumatoid_arthritis": ("rheumatoid_arthritis", 16),
    "learning_disability": ("learning_disability", 0),
    "pad": ("peripheral_vascular_disease", 0),
    "palliative_care": ("palliative_care", 0),
    "depression": ("depression", 18),
}
"""QOF register -> (definition, minimum age)."""
TARGETS = {
    "hypertension": 14.8,
    "diabetes": 7.7,
    "asthma": 6.5,
    "ckd_3_5": 4.1,
    "cancer": 3.6,
    "chd": 3.0,
    "atrial_fibrillation": 2.2,
    "copd": 1.9,
    "stroke_tia": 1.9,
    "heart_failure": 1.1,
    "smi": 1.0,
    "dementia": 0.8,
    "epilepsy": 0.8,
    "rheumatoid_arthritis": 0.8,
    "learning_disability": 0.6,
    "pad": 0.6,
    "palliative_care": 0.5,
    "depression": 13.3,
    "obesity": 13.0,
    "under_18": 21.0,
    "aged_65_plus": 19.0,
    "aged_85_plus": 2.5,
    "female": 51.0,
    "white": 81.0,
    "asian": 9.6,
    "black": 4.2,
    "mixed": 3.0,
    "other": 2.2,
    "gp": 6000,
    "ae": 460,
    "emergency": 110,
    "elective": 140,
    "outpatient": 2200,
    "deaths": 9.5,
    "births": 10.5,
}
"""Reference figures of clinical-reference.md section 7 (% or per 1,000 person-years)."""
GROUPS = {"white": "ABC", "mixed": "DEFG", "asian": "HJKL", "black": "MNP", "other": "RS"}


@dataclass(frozen=True)
class Figure:
    name: str
    target: float
    measured: float

    @property
    def relative_error(self) -> float:
        return abs(self.measured - self.target) / self.target


def _read(folder: Path, table: str) -> pl.DataFrame:
    for suffix in ("parquet", "csv"):
        path = folder / f"{table}.{suffix}"
        if path.exists():
            frame = pl.read_parquet(path) if suffix == "parquet" else pl.read_csv(path, infer_schema=False)
            return frame.rename({"nhs_number": "id"} if "nhs_number" in frame.columns else {"person_id": "id"})
    raise FileNotFoundError(folder / table)


def _as_date(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.String).str.to_date("%Y-%m-%d", strict=False)


def figures(folder: Path, start: date, extract: date) -> list[Figure]:
    """Every reference figure, measured on the files in ``folder`` (generated without planted errors)."""
    person = _read(folder, "person").with_columns(
        *[_as_date(c) for c in ("date_of_birth", "registration_start", "registration_end", "date_of_death")]
    )
    age = (pl.lit(extract) - pl.col("date_of_birth")).dt.total_days() / 365.25
    living = person.filter(pl.col("date_of_death").is_null() & pl.col("registration_end").is_null()).with_columns(
        age.alias("age")
    )
    out: list[Figure] = []

    def share(name: str, mask: pl.Expr, frame: pl.DataFrame = living) -> None:
        out.append(Figure(name, TARGETS[name], 100 * frame.select(mask.mean()).item()))

    events = _read(folder, "gp_event").with_columns(_as_date("event_date"))
    for name, (definition, min_age) in QOF.items():
        codes = list(definitions()[definition].codelists["snomed"].codes)
        coded = (
            events.filter(pl.col("snomed_code").is_in(codes))
            .select("id")
            .unique()
            .with_columns(pl.lit(True).alias("coded"))
        )
        frame = living.filter(pl.col("age") >= min_age).join(coded, on="id", how="left")
        share(name, pl.col("coded").fill_null(False), frame)
    bmi_codes = list(definitions()["bmi"].codelists["snomed"].codes)
    latest = (
        events.filter(pl.col("snomed_code").is_in(bmi_codes) & (pl.col("event_date") >= start))
        .sort("event_date")
        .group_by("id")
        .agg(pl.col("value").cast(pl.Float64).last().alias("bmi"))
    )
    adults = living.filter(pl.col("age") >= 18).join(latest, on="id", how="left")
    share("obesity", pl.col("bmi").fill_null(0) >= 30, adults)
    share("under_18", pl.col("age") < 18)
    share("aged_65_plus", pl.col("age") >= 65)
    share("aged_85_plus", pl.col("age") >= 85)
    share("female", pl.col("sex") == "F")
    stated = living.filter(pl.col("ethnicity").is_not_null() & (pl.col("ethnicity") != "Z"))
    for group, letters in GROUPS.items():
        share(group, pl.col("ethnicity").is_in(list(letters)), stated)

    first = pl.max_horizontal(pl.lit(start), pl.col("registration_start"), pl.col("date_of_birth"))
    last = pl.min_horizontal(pl.lit(extract), pl.col("registration_end"), pl.col("date_of_death"))
    years = person.select(((last - first).dt.total_days().clip(-1, None) + 1).sum()).item() / 365.25

    def rate(name: str, count: int) -> None:
        out.append(Figure(name, TARGETS[name], 1000 * count / years))

    in_window = pl.col("day").is_between(start, extract)
    rate("gp", events.select("id", pl.col("event_date").alias("day")).filter(in_window).unique().height)
    ae = _read(folder, "ae_attendance").with_columns(_as_date("arrival_date").alias("day"))
    rate("ae", ae.filter(in_window).height)
    apc = _read(folder, "apc_episode").with_columns(_as_date("admission_date").alias("day"))
    method = pl.col("admission_method").cast(pl.String)
    emergency = apc.filter(in_window & method.str.starts_with("2"))
    # Admissions are spells: an episode that starts on the day an emergency episode of the same person ended
    # is that stay's next consultant episode, not a new admission.
    ended = emergency.select("id", _as_date("discharge_date").alias("day"), pl.col("episode_id").alias("_other"))
    continued = emergency.join(ended, on=["id", "day"], how="inner").filter(pl.col("_other") != pl.col("episode_id"))
    rate("emergency", emergency.height - continued.select("episode_id").n_unique())
    rate("elective", apc.filter(in_window & method.is_in(["11", "12", "13"])).height)
    op = _read(folder, "op_appointment").with_columns(_as_date("appointment_date").alias("day"))
    rate("outpatient", op.filter(in_window & (pl.col("attended").cast(pl.String) == "true")).height)
    rate("deaths", person.filter(pl.col("date_of_death").is_between(start, extract)).height)
    rate("births", person.filter(pl.col("date_of_birth").is_between(start, extract)).height)
    return out


def table(found: list[Figure]) -> str:
    """The figures as a Markdown table."""
    lines = ["| figure | reference | measured | relative difference |", "|---|---:|---:|---:|"]
    lines += [f"| {f.name} | {f.target:g} | {f.measured:.2f} | {100 * f.relative_error:.1f}% |" for f in found]
    return "\n".join(lines)


__all__ = ["QOF", "TARGETS", "Figure", "figures", "table"]
