"""The Cambridge Multimorbidity Score in the risk stage on crafted people: weights, windows, prescriptions."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from openphm.content import content_path
from openphm.risk.cms import spec
from tests.support.risk import Rows, distinct_codes, gp, issue, nhs, risk_table, snomed_codes
from tests.support.sources import ENGINES, person

LAXATIVE, ANTIEPILEPTIC, ANTIDEPRESSANT, ANALGESIC = (
    "0106020C0AAAAAA",
    "0408010G0AAABAB",
    "0403030D0AAAAAA",
    "0407010H0",
)


def test_weights_are_the_published_general_outcome_weights() -> None:
    # Payne et al. 2020, as in two public implementations (content/scores/cms/SOURCE.md), in the paper's order
    assert list(spec().weights.values()) == [
        0.65, 0.50, 1.34, 1.53, 0.53, 0.43, 1.46, 0.49, 2.50, 0.75,
        0.92, 0.09, 1.18, 0.21, 0.64, 0.80, 0.19, 0.08, 1.12, 0.92,
    ]  # fmt: skip
    assert sum(spec().weights.values()) == pytest.approx(16.33)


def test_conditions_windows_and_prescription_rules(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    code = distinct_codes(["hypertension", "dementia", "cancer", "epilepsy", "depression", "anxiety"])
    ids = iter(nhs(i) for i in range(100, 140))
    names = {
        "two": next(ids),
        "old_cancer": next(ids),
        "new_cancer": next(ids),
        "laxatives4": next(ids),
        "laxatives3": next(ids),
        "pain_no_epilepsy": next(ids),
        "epilepsy_treated": next(ids),
        "epilepsy_untreated": next(ids),
        "old_depression": next(ids),
        "treated_depression": next(ids),
        "anxious_and_depressed": next(ids),
        "analgesics": next(ids),
        "none": next(ids),
    }
    n = names
    events = [
        gp(n["two"], "2010-01-01", code["hypertension"]),
        gp(n["two"], "2022-01-01", code["dementia"]),
        gp(n["old_cancer"], "2018-01-01", code["cancer"]),  # first diagnosed over five years before as_of ...
        gp(n["old_cancer"], "2023-06-01", code["cancer"]),  # ... so a recent code does not make it count
        gp(n["new_cancer"], "2020-01-01", code["cancer"]),
        gp(n["epilepsy_treated"], "2000-01-01", code["epilepsy"]),
        gp(n["epilepsy_untreated"], "2000-01-01", code["epilepsy"]),
        gp(n["old_depression"], "2021-01-01", code["depression"]),
        gp(n["treated_depression"], "2021-01-01", code["depression"]),
        gp(n["anxious_and_depressed"], "2023-10-01", code["depression"]),
        gp(n["anxious_and_depressed"], "2023-11-01", code["anxiety"]),
    ]
    months = ["2023-05-01", "2023-08-01", "2023-11-01", "2024-02-01"]
    medication = [issue(n["laxatives4"], d, LAXATIVE) for d in months]
    medication += [issue(n["laxatives3"], d, LAXATIVE) for d in months[1:]]
    medication += [issue(n["laxatives3"], "2023-02-01", LAXATIVE)]  # outside the 12 months
    medication += [issue(n["pain_no_epilepsy"], d, ANTIEPILEPTIC) for d in months]
    medication += [issue(n["epilepsy_treated"], d, ANTIEPILEPTIC) for d in months]  # epilepsy, not pain
    medication += [issue(n["epilepsy_untreated"], "2022-01-01", ANTIEPILEPTIC)]  # no anticonvulsant this year
    medication += [issue(n["treated_depression"], d, ANTIDEPRESSANT) for d in months]
    medication += [issue(n["analgesics"], d, ANALGESIC + "AAAAAA") for d in months]
    tables: Rows = {"person": [person(p) for p in names.values()], "gp_event": events, "gp_medication": medication}
    result = risk_table(source, tmp_path, tables, {v: k for k, v in names.items()})
    expected = {
        "two": (2.58, 2),
        "old_cancer": (0.0, 0),
        "new_cancer": (1.53, 1),
        "laxatives4": (1.12, 1),
        "laxatives3": (0.0, 0),
        "pain_no_epilepsy": (0.92, 1),
        "epilepsy_treated": (0.92, 1),
        "epilepsy_untreated": (0.0, 0),
        "old_depression": (0.0, 0),
        "treated_depression": (0.5, 1),
        "anxious_and_depressed": (0.5, 1),
        "analgesics": (0.92, 1),
        "none": (0.0, 0),
    }
    assert {k: (r["cms"], r["cms_conditions"]) for k, r in result.items()} == expected


SSRI, LOW_DOSE_TCA, LITHIUM, EGFR = (
    "0403030D0AAAAAA",
    ("321745007", "0403010B0AAAGAG"),
    "0402030K0AAAAAA",
    "1011481000000105",
)


def snomed_resolved(definition: str) -> list[str]:
    """The definition's resolved codes that are not also diagnosis codes."""
    with content_path("codelists", definition, "snomed_resolved.csv").open(encoding="utf-8", newline="") as handle:
        return [r["code"] for r in csv.DictReader(handle) if r["code"] not in snomed_codes(definition)]


SMI_REMISSION = snomed_resolved("serious_mental_illness")[0]


def egfr(who: str, when: str, value: float) -> dict[str, object]:
    return {**gp(who, when, EGFR), "value": value}


@pytest.mark.parametrize("engine", ENGINES)
def test_cambridge_definitions_of_depression_psychosis_and_ckd(
    source: Callable[[Rows], Path], tmp_path: Path, engine: str
) -> None:
    """Payne 2020 / Barnett 2012: antidepressants alone, lithium ever, the better of the last two eGFRs < 60."""
    code = distinct_codes(["serious_mental_illness"])
    names = {n: nhs(200 + i) for i, n in enumerate(
        ["ssri4", "ssri3", "tca_low4", "lithium_once", "smi_long_ago", "egfr_both_below", "egfr_one_above",
         "egfr_single", "egfr_older_above", "smi_in_remission", "none"]
    )}  # fmt: skip
    n = names
    months = ["2023-05-01", "2023-08-01", "2023-11-01", "2024-02-01"]
    medication = [issue(n["ssri4"], d, SSRI) for d in months]  # four antidepressants, no depression code
    medication += [issue(n["ssri3"], d, SSRI) for d in months[1:]]
    medication += [issue(n["tca_low4"], d, LOW_DOSE_TCA[1], LOW_DOSE_TCA[0]) for d in months]  # amitriptyline 10mg
    medication += [issue(n["lithium_once"], "2010-03-01", LITHIUM)]  # lithium ever: psychosis/bipolar
    events = [
        gp(n["smi_long_ago"], "2001-01-01", code["serious_mental_illness"]),  # code ever
        gp(n["smi_in_remission"], "2001-01-01", code["serious_mental_illness"]),
        gp(n["smi_in_remission"], "2005-01-01", SMI_REMISSION),  # off the register, but "code ever" counts
        egfr(n["egfr_both_below"], "2023-01-10", 58.0),
        egfr(n["egfr_both_below"], "2023-09-10", 52.0),
        egfr(n["egfr_one_above"], "2023-01-10", 52.0),
        egfr(n["egfr_one_above"], "2023-09-10", 61.0),  # the better of the last two is 61
        egfr(n["egfr_single"], "2023-09-10", 45.0),  # one reading: no "last two"
        egfr(n["egfr_older_above"], "2021-01-10", 75.0),  # only the last two count
        egfr(n["egfr_older_above"], "2023-01-10", 55.0),
        egfr(n["egfr_older_above"], "2023-09-10", 50.0),
    ]
    tables: Rows = {"person": [person(p) for p in names.values()], "gp_event": events, "gp_medication": medication}
    result = risk_table(source, tmp_path, tables, {v: k for k, v in names.items()}, engine, measures=True)
    expected = {
        "ssri4": (0.5, 1),
        "ssri3": (0.0, 0),
        "tca_low4": (0.0, 0),  # low-dose tricyclics do not count
        "lithium_once": (0.64, 1),
        "smi_long_ago": (0.64, 1),
        "egfr_both_below": (0.53, 1),
        "egfr_one_above": (0.0, 0),
        "egfr_single": (0.0, 0),
        "egfr_older_above": (0.53, 1),
        "smi_in_remission": (0.64, 1),
        "none": (0.0, 0),
    }
    assert {k: (r["cms"], r["cms_conditions"]) for k, r in result.items()} == expected
