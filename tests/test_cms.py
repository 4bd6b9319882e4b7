"""The Cambridge Multimorbidity Score in the risk stage on crafted people: weights, windows, prescriptions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from openphm.risk.cms import spec
from tests.support.risk import Rows, distinct_codes, gp, issue, nhs, risk_table
from tests.support.sources import person

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
