"""Rows for the risk-score tests: coded events and medicines, and the risk table of a small store."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import date
from pathlib import Path

from openphm.content import content_path
from openphm.ingest import ingest
from openphm.ingest.pseudonymise import KeyedHash
from openphm.pipeline import run
from openphm.stages import by_name
from tests.support.sources import EXTRACT, KEY, read_table, store_path

Rows = dict[str, list[dict[str, object]]]


AS_OF = date(2024, 3, 31)


def nhs(n: int) -> str:
    """A Modulus 11 valid NHS number from the testing range (999 xxx xxxx), the n-th such."""
    found = 0
    for candidate in range(999_000_000, 999_999_999):
        digits = [int(d) for d in str(candidate)]
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check == 10:
            continue
        if found == n:
            return f"{candidate}{0 if check == 11 else check}"
        found += 1
    raise ValueError(n)


def snomed_codes(definition: str) -> list[str]:
    with content_path("codelists", definition, "snomed.csv").open(encoding="utf-8", newline="") as handle:
        return [r["code"] for r in csv.DictReader(handle)]


def distinct_codes(definitions: list[str]) -> dict[str, str]:
    """One SNOMED CT code per definition that is in none of the other given definitions' lists."""
    lists = {d: snomed_codes(d) for d in definitions}
    chosen = {}
    for d, codes in lists.items():
        others = {c for o, v in lists.items() if o != d for c in v}
        chosen[d] = next(c for c in codes if c not in others)
    return chosen


def gp(who: str, when: str, code: str) -> dict[str, object]:
    return {"nhs_number": who, "event_date": when, "snomed_code": code, "value": None, "unit": None}


def issue(who: str, when: str, bnf: str | None, dmd: str = "100000001") -> dict[str, object]:
    return {"nhs_number": who, "issue_date": when, "dmd_code": dmd, "bnf_code": bnf}


def risk_table(
    source: Callable[[Rows], Path],
    tmp_path: Path,
    tables: Rows,
    names: dict[str, str],
    engine: str = "duckdb",
    *,
    measures: bool = False,
) -> dict[str, dict[str, object]]:
    """Ingest ``tables``, run population, register (and measures) and risk at AS_OF; risk rows by name of person."""
    store = store_path(tmp_path, engine)
    ingest(source(tables), store, key=KEY, engine=engine, extract_date=EXTRACT)
    wanted = ("population", "register", "risk", *(("measures",) if measures else ()))
    stages = [s for name, s in by_name().items() if name in wanted]
    run(store, engine=engine, as_of=(AS_OF,), stages=stages)
    pseudonyms = dict(zip(KeyedHash(KEY)(list(names)), names.values(), strict=True))
    frame = read_table(store, "risk", engine)
    assert frame.height == len(tables["person"])  # one row per population row
    return {pseudonyms[r["person_id"]]: r for r in frame.iter_rows(named=True)}
