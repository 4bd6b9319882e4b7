"""Realism of the synthetic population against docs/clinical-reference.md section 7, on 200,000 people.

The figures are computed from the generated files with the package's own code lists, printed as a table
(run with -s to see it) and asserted. Also checked: what the other stages need to find in the data -
every Bridges to Health subsegment, eFI categories, polypharmacy, waiting lists, frequent A&E use, raised
blood pressure without a diagnosis, and an emergency admission that the past predicts (AUROC >= 0.75).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from openphm.synth import SynthResult, generate
from openphm.synth.codes import definitions
from openphm.synth.figures import QOF, Figure, figures, table

PEOPLE = 200_000
START = date(2021, 4, 1)
TOLERANCE = {
    **dict.fromkeys([*QOF, "obesity"], 0.15),
    **dict.fromkeys(["under_18", "aged_65_plus", "female"], 0.10),
    "aged_85_plus": 0.15,
    **dict.fromkeys(["white", "mixed", "asian", "black", "other"], 0.15),
    **dict.fromkeys(["gp", "ae", "emergency", "elective", "outpatient", "deaths", "births"], 0.15),
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return generate(tmp_path_factory.mktemp("england"), people=PEOPLE, seed=2024, error_rate=0.0)


@pytest.fixture(scope="module")
def measured(sample: SynthResult) -> list[Figure]:
    found = figures(sample.out, START, sample.extract_date)
    print(f"\nRealism of {PEOPLE:,} synthetic people (generated in {sample.seconds:.1f} s)\n{table(found)}")
    return found


def test_figures_meet_the_reference(measured: list[Figure]) -> None:
    assert {f.name for f in measured} == set(TOLERANCE)
    wrong = [f"{f.name}: {f.measured:.2f} vs {f.target}" for f in measured if f.relative_error > TOLERANCE[f.name]]
    assert not wrong, wrong


class Data:
    """The generated tables, read once."""

    def __init__(self, folder: Path, extract: date) -> None:
        def read(name: str) -> pl.DataFrame:
            frame = pl.read_parquet(folder / f"{name}.parquet")
            return frame.rename({"nhs_number": "id"}) if "nhs_number" in frame.columns else frame

        self.extract = extract
        self.person = read("person")
        self.events = read("gp_event")
        self.medication = read("gp_medication")
        self.episodes = read("apc_episode")
        self.diagnoses = read("apc_diagnosis")
        self.procedures = read("apc_procedure")
        self.ae = read("ae_attendance")
        self.waits = read("waiting_list")
        self.social = read("social_care_service")
        age = (pl.lit(extract) - pl.col("date_of_birth")).dt.total_days() / 365.25
        self.living = self.person.filter(
            pl.col("date_of_death").is_null() & pl.col("registration_end").is_null()
        ).with_columns(age.alias("age"))

    def coded(self, definition: str, before: date | None = None) -> pl.DataFrame:
        """Distinct ids with a SNOMED CT code of ``definition`` (on or before ``before``)."""
        codes = list(definitions()[definition].codelists["snomed"].codes)
        events = self.events if before is None else self.events.filter(pl.col("event_date") <= before)
        return events.filter(pl.col("snomed_code").is_in(codes)).select("id").unique()


@pytest.fixture(scope="module")
def data(sample: SynthResult) -> Data:
    return Data(sample.out, sample.extract_date)


def test_identifiers_are_unique_across_chunks(data: Data) -> None:
    assert data.person.height == PEOPLE  # two chunks of 100,000
    assert data.person["id"].n_unique() == PEOPLE
    assert data.episodes["episode_id"].n_unique() == data.episodes.height
    assert data.ae["attendance_id"].n_unique() == data.ae.height


def test_every_b2h_subsegment_occurs(data: Data) -> None:
    wanted = [d.id for d in definitions().values() if d.segment and d.kind == "condition" and "snomed" in d.codelists]
    counts = {name: data.coded(name).join(data.living, on="id").height for name in wanted}
    absent = [name for name, n in counts.items() if n == 0]
    assert not absent, absent
    assert data.living.filter(pl.col("age") < 1).height > 0.006 * data.living.height  # infants
    assert data.diagnoses.filter(pl.col("icd10_code").str.contains("^C7[789]")).height > 0  # incurable cancer
    dialysis = data.procedures.filter(pl.col("opcs4_code").str.starts_with("X40"))
    assert dialysis.height > 0
    assert data.diagnoses.filter(pl.col("icd10_code").str.contains("^(F0[0-3]|R26|W19|R41)")).height > 0  # HFRS
    for code in ("I50", "J44", "J45", "E1", "N39"):  # ambulatory-care-sensitive conditions
        assert data.diagnoses.filter(pl.col("icd10_code").str.starts_with(code)).height > 0, code


def test_frailty_categories_and_polypharmacy_in_older_people(data: Data) -> None:
    older = data.living.filter(pl.col("age") >= 65).select("id")
    efi = [d for d in definitions() if d.startswith("efi_")]
    deficits = pl.concat([data.coded(d).with_columns(pl.lit(d).alias("deficit")) for d in efi])
    year_ago = data.extract - timedelta(days=365)
    medicines = (
        data.medication.filter(pl.col("issue_date") > year_ago).group_by("id").agg(pl.col("dmd_code").n_unique())
    )
    scored = (
        older.join(deficits.group_by("id").len(), on="id", how="left")
        .join(medicines, on="id", how="left")
        .fill_null(0)
        .with_columns(((pl.col("len") + (pl.col("dmd_code") >= 5)) / 36).alias("efi"))
    )
    efi = pl.col("efi")
    category = (
        pl.when(efi <= 0.12)
        .then(pl.lit("fit"))
        .when(efi <= 0.24)
        .then(pl.lit("mild"))
        .when(efi <= 0.36)
        .then(pl.lit("moderate"))
        .otherwise(pl.lit("severe"))
    )
    shares = dict(scored.select(category.alias("c")).group_by("c").len().iter_rows())
    print(f"\neFI categories, people 65+: { {k: round(100 * v / scored.height, 1) for k, v in shares.items()} }")
    assert {"fit", "mild", "moderate", "severe"} <= set(shares)
    assert shares["fit"] > shares["mild"] > shares["moderate"]
    polypharmacy = (scored["dmd_code"] >= 5).mean()
    print(f"Polypharmacy (>= 5 distinct dm+d products in 12 months), people 65+: {100 * polypharmacy:.1f}%")
    assert polypharmacy > 0.05, polypharmacy


def test_cohort_inputs_occur(data: Data) -> None:
    extract = data.extract
    open_lists = (
        data.waits.filter(
            (pl.col("referral_date") <= extract)
            & (pl.col("removal_date").is_null() | (pl.col("removal_date") > extract))
        )
        .group_by("id")
        .len()
    )
    older_on_four = data.living.filter(pl.col("age") >= 65).join(open_lists.filter(pl.col("len") >= 4), on="id")
    assert older_on_four.height > 50
    frequent = data.ae.filter(pl.col("arrival_date") > extract - timedelta(days=365)).group_by("id").len()
    assert frequent.filter(pl.col("len") >= 5).height > 0.002 * data.living.height
    definitions_ = definitions()
    sbp = list(definitions_["systolic_bp"].codelists["snomed"].codes)
    raised = (
        data.events.filter(pl.col("snomed_code").is_in(sbp) & (pl.col("value") >= 140))
        .select("id", "event_date")
        .unique()
        .group_by("id")
        .len()
        .filter(pl.col("len") >= 2)
    )
    assert raised.join(data.coded("hypertension"), on="id", how="anti").height > 0.005 * data.living.height
    older_care = data.social.join(data.living.filter(pl.col("age") >= 65), on="id").select("id").n_unique()
    assert older_care > 0.02 * data.living.filter(pl.col("age") >= 65).height


def test_emergency_bed_days_are_concentrated(data: Data) -> None:
    """A few per cent of people account for about half of a year's emergency bed days."""
    last_year = pl.col("admission_date") > data.extract - timedelta(days=365)
    emergency = data.episodes.filter(pl.col("admission_method").str.starts_with("2") & last_year)
    stays = emergency.with_columns((pl.col("discharge_date") - pl.col("admission_date")).dt.total_days().alias("days"))
    per_person = stays.group_by("id").agg(pl.col("days").sum()).sort("days", descending=True)["days"].to_numpy()
    cumulative = np.cumsum(per_person)
    holding_half = np.searchsorted(cumulative, cumulative[-1] / 2) / data.living.height
    admitted = len(per_person) / data.living.height
    print(
        f"\nLast year: {100 * admitted:.1f}% of people had an emergency admission; "
        f"{100 * holding_half:.2f}% of people had half of the emergency bed days"
    )
    assert 0.003 < holding_half < 0.05


def test_past_admissions_predict_the_next_year(data: Data) -> None:
    """A simple model on age, sex, condition count and prior admissions reaches AUROC >= 0.75."""
    as_of = data.extract - timedelta(days=365)
    alive = (pl.col("date_of_death").is_null() | (pl.col("date_of_death") > as_of)) & (
        pl.col("registration_end").is_null() | (pl.col("registration_end") > as_of)
    )
    people = data.person.filter(alive & (pl.col("registration_start") <= as_of)).with_columns(
        ((pl.lit(as_of) - pl.col("date_of_birth")).dt.total_days() / 365.25).alias("age")
    )
    emergency = data.episodes.filter(pl.col("admission_method").str.starts_with("2"))

    def admissions(low: date, high: date, name: str) -> pl.DataFrame:
        window = (pl.col("admission_date") > low) & (pl.col("admission_date") <= high)
        return emergency.filter(window).group_by("id").len().rename({"len": name})

    conditions = [
        d.id for d in definitions().values() if d.segment == "long_term_conditions" and "snomed" in d.codelists
    ]
    coded = pl.concat([data.coded(c, as_of).with_columns(pl.lit(c).alias("c")) for c in conditions])
    frame = (
        people.join(admissions(as_of - timedelta(days=365), as_of, "prior"), on="id", how="left")
        .join(admissions(as_of - timedelta(days=730), as_of, "prior24"), on="id", how="left")
        .join(admissions(as_of, as_of + timedelta(days=365), "next"), on="id", how="left")
        .join(coded.group_by("id").len().rename({"len": "conditions"}), on="id", how="left")
        .fill_null(0)
    )
    features = np.column_stack(
        [
            frame["age"].to_numpy(),
            frame["age"].to_numpy() ** 2 / 100,
            (frame["sex"] == "F").to_numpy(),
            frame["conditions"].to_numpy(),
            np.minimum(frame["prior"].to_numpy(), 5),
            np.minimum(frame["prior24"].to_numpy(), 8),
        ]
    )
    outcome = (frame["next"].to_numpy() > 0).astype(int)
    order = np.random.default_rng(0).permutation(len(outcome))
    train, test = order[: len(order) // 2], order[len(order) // 2 :]
    model = LogisticRegression(max_iter=1000).fit(features[train], outcome[train])
    auroc = roc_auc_score(outcome[test], model.predict_proba(features[test])[:, 1])
    print(f"\nEmergency admission in the next 12 months: AUROC {auroc:.3f} (outcome rate {outcome.mean():.3f})")
    assert auroc >= 0.75
