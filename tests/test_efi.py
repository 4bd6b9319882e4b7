"""The eFI in the risk stage on crafted people: every category boundary, the age rules, polypharmacy counting.

Each person's deficits are coded in primary care (one code of each chosen eFI deficit list); the stage runs
through ingest, population, register and risk, as in production.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from openphm.risk.efi import spec
from tests.support.risk import Rows, distinct_codes, gp, issue, nhs, risk_table
from tests.support.sources import person

DEFICIT_COUNTS = {0: "fit", 4: "fit", 5: "mild", 8: "mild", 9: "moderate", 12: "moderate", 13: "severe", 14: "severe"}


def test_categories_at_each_boundary_and_age_rules(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    codes = list(distinct_codes(sorted(spec().definitions)).values())
    assert len(codes) == 35
    names, people, events = {}, [], []
    for i, k in enumerate(DEFICIT_COUNTS):
        who = nhs(i)
        names[who] = f"d{k}"
        people.append(person(who))
        events += [gp(who, "2015-01-01", c) for c in codes[:k]]
        events.append(gp(who, "2024-04-01", codes[-1]))  # after as_of: never counts
    child, sixty = nhs(20), nhs(21)
    names |= {child: "child", sixty: "sixty"}
    people += [person(child, date_of_birth="2014-01-15"), person(sixty, date_of_birth="1963-05-15")]
    events += [gp(child, "2020-01-01", c) for c in codes[:3]] + [gp(sixty, "2020-01-01", c) for c in codes[:3]]
    d4 = next(k for k, v in names.items() if v == "d4")
    # the eFI reads the primary care record: an A&E diagnosis of a deficit's concept does not count
    ae = [{"nhs_number": d4, "attendance_id": "A1", "arrival_date": "2023-01-01", "diagnosis_snomed": codes[20]}]
    result = risk_table(source, tmp_path, {"person": people, "gp_event": events, "ae_attendance": ae}, names)
    for k, category in DEFICIT_COUNTS.items():
        row = result[f"d{k}"]
        assert row["efi_deficits"] == k and row["efi"] == pytest.approx(k / 36), k
        assert row["efi_category"] == category, k
        assert row["efi_eligible"] is True and row["polypharmacy"] is None  # no gp_medication: not available
    assert result["child"]["efi"] is None and result["child"]["efi_category"] is None
    assert result["sixty"]["efi_deficits"] == 3 and result["sixty"]["efi_eligible"] is False


def test_polypharmacy_counts_distinct_medicines_in_the_last_year(
    source: Callable[[Rows], Path], tmp_path: Path
) -> None:
    drugs = ["0212000B0AAABAB", "0205051R0AAAAAA", "0601022B0AAABAB", "0103050P0AAAFAF", "0407010H0AAAMAM"]
    recent = "2024-01-10"
    cases: dict[str, list[dict[str, object]]] = {}
    who = iter(nhs(i) for i in range(40, 60))
    four, five, repeats, old, dmd_only, appliance, coded = (next(who) for _ in range(7))
    cases[four] = [issue(four, recent, d) for d in drugs[:4]]
    cases[five] = [issue(five, recent, d) for d in drugs]
    # one medicine issued many times, in two strengths and brands: still one (the BNF chemical substance)
    cases[repeats] = [issue(repeats, recent, d) for d in drugs[:4]] + [
        issue(repeats, "2023-06-01", "0212000B0AAABAB"),
        issue(repeats, "2023-07-01", "0212000B0AAACAC"),
        issue(repeats, "2023-08-01", "0212000B0BBAAAA"),
    ]
    # the fifth medicine 13 months before as_of is outside the year; one on as_of itself is inside
    cases[old] = [issue(old, "2024-03-31", d) for d in drugs[:4]] + [issue(old, "2023-02-28", drugs[4])]
    cases[dmd_only] = [issue(dmd_only, recent, None, dmd=str(200000001 + i)) for i in range(5)]
    cases[appliance] = [issue(appliance, recent, d) for d in drugs[:4]] + [issue(appliance, recent, "21010000000")]
    cases[coded] = [issue(coded, recent, d) for d in drugs]
    names = {four: "four", five: "five", repeats: "repeats", old: "old", dmd_only: "dmd", appliance: "appliance"}
    names[coded] = "coded"
    deficits = list(distinct_codes(sorted(spec().definitions)).values())[:4]
    tables: Rows = {
        "person": [person(p) for p in names],
        "gp_medication": [row for rows in cases.values() for row in rows],
        "gp_event": [gp(coded, "2019-01-01", c) for c in deficits],
    }
    result = risk_table(source, tmp_path, tables, names)
    polypharmacy = {name: row["polypharmacy"] for name, row in result.items()}
    assert polypharmacy == {
        "four": False,
        "five": True,
        "repeats": False,
        "old": False,
        "dmd": True,
        "appliance": False,
        "coded": True,
    }
    assert result["five"]["efi_deficits"] == 1 and result["four"]["efi_deficits"] == 0
    assert (result["coded"]["efi_deficits"], result["coded"]["efi_category"]) == (5, "mild")  # 4 coded + polypharmacy
