"""End-stage renal failure from persistent eGFR, and incurable cancer from distant spread or cancer palliative care.

Crafted people on each side of every boundary (issue 17), through ingest and the real population, register,
measures and segment stages, on every engine:

- CKD stage from eGFR needs the readings to stay in a KDIGO category for at least 90 days (KDIGO 2012: "more
  than 3 months"): one eGFR of 12 is not stage 5; two below 15 at 89 days apart are not, at 90 and 100 are;
  a 20 between two 12s breaks the run; coded kidney transplant is end-stage renal failure on its own.
- Incurable cancer is distant metastasis (C78-C79 and the SNOMED CT secondary/metastatic concepts), not a
  lymph-node secondary (C77), a cancer of unspecified site (C80) or a condition "secondary to malignancy";
  palliative care counts when recorded after a cancer, begun within 365 days of its latest code, or when the
  code is cancer-specific.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.support.segments import AS_OF, LAST, Crafted, build
from tests.support.sources import ENGINES, read_table, store_path

HOSPITAL = "11"  # elective admission method: only the diagnoses matter here

# name -> (person, segment, incurable_cancer flag, end_stage_renal_failure flag, ckd_stage) at the last as_of
CASES: dict[str, tuple[Crafted, str, bool, bool, int | None]] = {
    # eGFR persistence (KDIGO 2012)
    "egfr_single_12": (Crafted(egfrs=(("2024-06-01", 12.0),)), "healthy", False, False, 1),
    "egfr_two_80_days": (Crafted(egfrs=(("2024-03-13", 12.0), ("2024-06-01", 12.0))), "healthy", False, False, 1),
    "egfr_two_89_days": (Crafted(egfrs=(("2024-03-04", 12.0), ("2024-06-01", 12.0))), "healthy", False, False, 1),
    "egfr_two_90_days": (
        Crafted(egfrs=(("2024-03-03", 12.0), ("2024-06-01", 12.0))),
        "organ_failure",
        False,
        True,
        5,
    ),
    "egfr_two_100_days": (
        Crafted(egfrs=(("2024-02-22", 13.0), ("2024-06-01", 11.0))),
        "organ_failure",
        False,
        True,
        5,
    ),
    "egfr_20_between": (  # below 15 only since 2024-06-01; below 30 for 138 days: stage 4
        Crafted(egfrs=(("2024-01-15", 12.0), ("2024-03-15", 20.0), ("2024-06-01", 12.0))),
        "healthy",
        False,
        False,
        4,
    ),
    "egfr_at_15_for_100_days": (  # 15 is not below 15: stage 4
        Crafted(egfrs=(("2024-02-22", 15.0), ("2024-06-01", 15.0))),
        "healthy",
        False,
        False,
        4,
    ),
    "egfr_recovered": (  # below 15 for 106 days, then 40: stage 3 (below 60 since the first reading)
        Crafted(egfrs=(("2023-10-01", 12.0), ("2024-01-15", 12.0), ("2024-06-01", 40.0))),
        "healthy",
        False,
        False,
        3,
    ),
    "kidney_transplant": (Crafted(coded={"kidney_transplant": "2024-05-01"}), "organ_failure", False, True, None),
    # incurable cancer: distant spread only
    "lymph_node_secondary": (
        Crafted(coded={"lymph_node_secondary": "2024-05-01"}),
        "long_term_conditions",
        False,
        False,
        None,
    ),
    "c77_lymph_nodes": (Crafted(admissions=(("2024-08-01", HOSPITAL, ("C771",)),)), "healthy", False, False, None),
    "c80_unspecified_site": (
        Crafted(admissions=(("2024-08-01", HOSPITAL, ("C809",)),)),
        "healthy",
        False,
        False,
        None,
    ),
    "c78_liver_secondary": (
        Crafted(admissions=(("2024-08-01", HOSPITAL, ("C787",)),)),
        "incurable_cancer",
        True,
        False,
        None,
    ),
    "arthritis_secondary_to_malignancy": (
        Crafted(coded={"secondary_arthritis": "2024-05-01"}),
        "long_term_conditions",  # still on the cancer register
        False,
        False,
        None,
    ),
    # palliative care that belongs to a cancer
    "palliative_antineoplastic": (
        Crafted(coded={"palliative_antineoplastic": "2024-05-01"}),
        "incurable_cancer",
        True,
        False,
        None,
    ),
    "palliative_after_cancer": (
        Crafted(coded={"cancer": "2024-05-01", "palliative_care": "2024-09-01"}),
        "incurable_cancer",
        True,
        False,
        None,
    ),
    "palliative_heart_failure_old_cancer": (
        Crafted(coded={"cancer": "2021-01-10", "heart_failure": "2023-05-01", "palliative_care": "2024-05-01"}),
        "long_term_conditions",
        False,
        False,
        None,
    ),
    "palliative_before_cancer": (
        Crafted(coded={"palliative_care": "2023-01-01", "cancer": "2024-05-01"}),
        "long_term_conditions",
        False,
        False,
        None,
    ),
    "palliative_365_days_after_cancer": (
        Crafted(coded={"cancer": "2023-06-01", "palliative_care": "2024-05-31"}),
        "incurable_cancer",
        True,
        False,
        None,
    ),
    "palliative_366_days_after_cancer": (
        Crafted(coded={"cancer": "2023-06-01", "palliative_care": "2024-06-01"}),
        "long_term_conditions",
        False,
        False,
        None,
    ),
}


@pytest.mark.parametrize("engine", ENGINES)
def test_boundaries_on_each_engine(tmp_path: Path, engine: str) -> None:
    store = store_path(tmp_path, engine)
    ids = build(tmp_path / "source", store, engine, {name: case[0] for name, case in CASES.items()})
    names = {v: k for k, v in ids.items()}
    segments = read_table(store, "segment", engine).with_columns(pl.col("person_id").replace_strict(names))
    measures = read_table(store, "measure", engine).with_columns(pl.col("person_id").replace_strict(names))
    got, want = {}, {}
    for name, (_, segment, incurable, renal, ckd_stage) in CASES.items():
        row = segments.filter(person_id=name, as_of=LAST).to_dicts()[0]
        stage = measures.filter(person_id=name, as_of=LAST)["ckd_stage"].to_list()
        got[name] = (row["segment"], row["incurable_cancer"], row["end_stage_renal_failure"], stage[0])
        want[name] = (segment, incurable, renal, ckd_stage)
    assert got == want
    # Only readings up to each as_of count: on 2024-03-31 the 100-day pair has one reading, so no stage yet.
    earlier = measures.filter(person_id="egfr_two_100_days", as_of=AS_OF[1])["ckd_stage"].to_list()
    assert earlier == [1]
