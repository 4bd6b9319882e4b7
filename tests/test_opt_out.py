"""Opt-outs as the law applies them: the list, Type 1 objections in the GP record, the national check's
cleared list, each applied under the purposes the policy names; counted by source, never listed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import nhs_number
import polars as pl
import pytest

from openphm.contract.schema import TABLES
from openphm.engine import open_store
from openphm.errors import InputError
from openphm.ingest import ingest
from openphm.ingest.policy import load_policy
from openphm.ingest.pseudonymise import KeyedHash
from tests.support.sources import ENGINES, EXTRACT, KEY, person, read_table, store_path

DISSENT, WITHDRAWN = "827241000000103", "827261000000102"
BP = "271649006"  # systolic blood pressure: an ordinary entry everyone has
# The crafted people (NHS numbers from the range reserved for testing).
CRAFTED = {
    "dissent": "9990000018",
    "dissent_then_withdrawn": "9990000026",
    "withdrawn_then_dissent": "9990000034",
    "dissent_and_withdrawn_same_day": "9990000042",
    "on_the_list": "9990000050",
    "not_cleared": "9990000069",
    "none": "9990000077",
}
TYPE1 = {"dissent", "withdrawn_then_dissent", "dissent_and_withdrawn_same_day"}
EXPECTED_REMOVED = {
    "planning": {"opted_out_list": {"on_the_list"}, "opted_out_type1": TYPE1, "not_cleared": {"not_cleared"}},
    "research": {"opted_out_list": {"on_the_list"}, "opted_out_type1": TYPE1, "not_cleared": {"not_cleared"}},
    "risk-stratification": {"opted_out_type1": TYPE1},
    "direct-care": {},
}
CHECKED_ON = "2025-06-01"


def _event(nhs: str, day: str, code: str = BP) -> dict[str, object]:
    return {"nhs_number": nhs, "event_date": day, "snomed_code": code, "value": None, "unit": None}


def _crafted_tables() -> dict[str, list[dict[str, object]]]:
    n = CRAFTED
    events = [_event(nhs, "2024-01-10") for nhs in n.values()] + [
        _event(n["dissent"], "2020-03-01", DISSENT),
        _event(n["dissent_then_withdrawn"], "2019-05-01", DISSENT),
        _event(n["dissent_then_withdrawn"], "2021-05-01", WITHDRAWN),
        _event(n["withdrawn_then_dissent"], "2019-05-01", WITHDRAWN),
        _event(n["withdrawn_then_dissent"], "2021-05-01", DISSENT),
        _event(n["dissent_and_withdrawn_same_day"], "2022-02-02", WITHDRAWN),
        _event(n["dissent_and_withdrawn_same_day"], "2022-02-02", DISSENT),
    ]
    episodes = [
        {
            "nhs_number": nhs,
            "episode_id": f"E{i}",
            "admission_date": "2024-02-01",
            "discharge_date": "2024-02-03",
            "admission_method": "21",
            "provider_code": None,
            "cost": None,
        }
        for i, nhs in enumerate(n.values())
    ]
    return {
        "person": [person(nhs) for nhs in n.values()],
        "gp_event": events,
        "apc_episode": episodes,
        "apc_diagnosis": [{"episode_id": e["episode_id"], "position": 1, "icd10_code": "I500"} for e in episodes],
        "opt_out": [{"nhs_number": n["on_the_list"]}],
        "opt_out_cleared": [
            {"nhs_number": nhs, "checked_on": CHECKED_ON} for key, nhs in n.items() if key != "not_cleared"
        ],
    }


def _pseudonym(nhs: str) -> str:
    return KeyedHash(KEY)([nhs])[0]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("purpose", list(EXPECTED_REMOVED))
def test_crafted_people_under_each_purpose(
    source: Callable[[dict[str, list[dict[str, object]]]], Path], tmp_path: Path, engine: str, purpose: str
) -> None:
    folder = source(_crafted_tables())
    store = store_path(tmp_path, engine)
    result = ingest(folder, store, key=KEY, purpose=purpose, engine=engine, extract_date=EXTRACT)

    expected = EXPECTED_REMOVED[purpose]
    removed = set().union(*expected.values()) if expected else set()
    kept = {_pseudonym(CRAFTED[k]) for k in CRAFTED if k not in removed}
    # The right people are in the store: in person, in gp_event, and (through their episodes) in diagnoses.
    assert set(read_table(store, "person", engine)["person_id"]) == kept
    assert set(read_table(store, "gp_event", engine)["person_id"]) == kept
    episodes = read_table(store, "apc_episode", engine)
    assert set(episodes["person_id"]) == kept
    assert set(read_table(store, "apc_diagnosis", engine)["episode_id"]) == set(episodes["episode_id"])

    # People removed by each source, counted separately (each person under one source).
    assert {s: n for s, n in result.people_removed.items() if n} == {s: len(p) for s, p in expected.items()}
    log = read_table(store, "run_log", engine)
    people = log.filter(pl.col("metric") == "people_removed")
    assert {r["item"]: int(r["value"]) for r in people.iter_rows(named=True) if r["value"]} == {
        s: len(p) for s, p in expected.items()
    }
    # Rows: person has one row each; gp_event reconciles, with the Type 1 entries removed with their people.
    by_table = {o.table: o for o in result.outcomes}
    assert dict(by_table["person"].removed) == {s: len(p) for s, p in expected.items()}
    gp = by_table["gp_event"]
    assert gp.balanced and gp.quarantined == 0
    type1_rows = {"dissent": 2, "withdrawn_then_dissent": 3, "dissent_and_withdrawn_same_day": 3}
    rows_by_source = {s: sum(type1_rows.get(k, 1) for k in p) for s, p in expected.items()}
    assert dict(gp.removed) == rows_by_source
    reconciled = log.filter((pl.col("step") == "reconcile") & (pl.col("item") == "gp_event"))
    assert {r["metric"]: int(r["value"]) for r in reconciled.iter_rows(named=True)} == {
        "input_rows": 14,
        "loaded": 14 - sum(rows_by_source.values()),
        "quarantined": 0,
        "opted_out": sum(rows_by_source.values()),
        **rows_by_source,
    }
    # The policy and the check's date are recorded; the lists themselves are never stored.
    assert log.filter(pl.col("metric") == "policy_version")["detail"].to_list() == [load_policy().version]
    assert log.filter(pl.col("metric") == "checked_on")["detail"].to_list() == [CHECKED_ON]
    assert result.cleared_checked_on == date.fromisoformat(CHECKED_ON)
    eng = open_store(store, engine)
    try:
        assert not {"opt_out", "opt_out_cleared"} & set(eng.tables())
    finally:
        eng.close()


def test_every_purpose_has_a_cited_basis() -> None:
    policy = load_policy()
    assert set(policy.purposes) >= {"planning", "research", "risk-stratification", "direct-care"}
    for purpose in policy.purposes.values():
        assert purpose.basis and purpose.cites and set(purpose.cites) <= set(policy.sources)
    assert policy.purposes["direct-care"].applied == ()
    assert policy.purposes["risk-stratification"].applied == ("type1",)
    # A store made for direct care or risk stratification cannot stand in for planning; the reverse can.
    assert not policy.covers("direct-care", "planning")
    assert not policy.covers("risk-stratification", "planning")
    assert policy.covers("planning", "direct-care") and policy.covers("planning", "risk-stratification")


def test_a_deployment_policy_replaces_the_shipped_one(
    source: Callable[[dict[str, list[dict[str, object]]]], Path], tmp_path: Path
) -> None:
    own = tmp_path / "purposes.yaml"
    own.write_text(
        'version: "local-1"\nsources: {ig: "our IG lead, 2026"}\npurposes:\n'
        "  audit: {opt_out_list: true, type1: false, cleared_list: false, basis: x, cites: [ig]}\n",
        encoding="utf-8",
    )
    folder = source(_crafted_tables())
    result = ingest(folder, store_path(tmp_path, "duckdb"), key=KEY, purpose="audit", policy=own, extract_date=EXTRACT)
    assert result.policy_version == "local-1" and result.people_removed == {"opted_out_list": 1}
    with pytest.raises(InputError, match="--purpose must be one of audit"):
        ingest(folder, tmp_path / "x.duckdb", key=KEY, purpose="planning", policy=own, extract_date=EXTRACT)
    bad = tmp_path / "bad.yaml"
    bad.write_text("purposes: [1, 2]\n", encoding="utf-8")
    with pytest.raises(InputError, match="not a purposes policy"):
        ingest(folder, tmp_path / "y.duckdb", key=KEY, policy=bad, extract_date=EXTRACT)


def _opted_out_pseudonyms(source: Path) -> set[str]:
    numbers = [n.replace(" ", "") for n in pl.read_csv(source / "opt_out.csv", infer_schema=False)["nhs_number"]]
    return set(KeyedHash(KEY)([n for n in numbers if nhs_number.is_valid(n)]))


def test_planning_removes_opted_out_people_from_every_table(demo_source: Path, tmp_path: Path) -> None:
    store = store_path(tmp_path, "duckdb")
    result = ingest(demo_source, store, key=KEY, extract_date=EXTRACT)
    opted = _opted_out_pseudonyms(demo_source)
    assert len(opted) == 9

    for name, table in TABLES.items():
        if not table.person_level or name in ("opt_out", "opt_out_cleared"):
            continue
        people = set(read_table(store, name)["person_id"])
        assert not people & opted, name
    # Diagnoses and procedures carry no person column: they go with their episodes.
    episodes = set(read_table(store, "apc_episode")["episode_id"])
    for child in ("apc_diagnosis", "apc_procedure"):
        assert set(read_table(store, child)["episode_id"]) <= episodes

    removed = {o.table: o.opted_out for o in result.outcomes}
    assert removed["person"] == 9 and removed["gp_event"] > 0 and removed["apc_diagnosis"] > 0
    # No cleared list was supplied: the log says the national check was not applied.
    log = read_table(store, "run_log")
    assert log.filter(metric="not_supplied")["item"].to_list() == ["opt_out_cleared"]
    eng = open_store(store)
    assert "opt_out" not in eng.tables()
    eng.close()


def test_direct_care_keeps_opted_out_people_and_logs_why(demo_source: Path, tmp_path: Path) -> None:
    store = store_path(tmp_path, "duckdb")
    result = ingest(demo_source, store, key=KEY, purpose="direct-care", extract_date=EXTRACT)
    assert all(o.opted_out == 0 for o in result.outcomes)
    assert _opted_out_pseudonyms(demo_source) <= set(read_table(store, "person")["person_id"])
    log = read_table(store, "run_log")
    assert log.filter(metric="purpose")["detail"].to_list() == ["direct-care"]
    assert sorted(log.filter(metric="not_applied")["item"]) == ["opt_out", "type1"]
