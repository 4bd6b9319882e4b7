"""The national data opt-out: under 'planning' everyone listed is removed from every table; counted, not listed."""

from __future__ import annotations

from pathlib import Path

import nhs_number
import polars as pl
import pytest

from openphm.contract.schema import TABLES
from openphm.engine import open_store
from openphm.ingest import ingest
from openphm.ingest.pseudonymise import KeyedHash
from tests.support.sources import EXTRACT, KEY, read_table, store_path


def _opted_out_pseudonyms(source: Path) -> set[str]:
    numbers = [n.replace(" ", "") for n in pl.read_csv(source / "opt_out.csv", infer_schema=False)["nhs_number"]]
    return set(KeyedHash(KEY)([n for n in numbers if nhs_number.is_valid(n)]))


def test_planning_removes_opted_out_people_from_every_table(demo_source: Path, tmp_path: Path) -> None:
    store = store_path(tmp_path, "duckdb")
    result = ingest(demo_source, store, key=KEY, extract_date=EXTRACT)
    opted = _opted_out_pseudonyms(demo_source)
    assert len(opted) == 9

    for name, table in TABLES.items():
        if not table.person_level or name == "opt_out":
            continue
        people = set(read_table(store, name)["person_id"])
        assert not people & opted, name
    # Diagnoses and procedures carry no person column: they go with their episodes.
    episodes = set(read_table(store, "apc_episode")["episode_id"])
    for child in ("apc_diagnosis", "apc_procedure"):
        assert set(read_table(store, child)["episode_id"]) <= episodes

    removed = {o.table: o.opted_out for o in result.outcomes}
    assert removed["person"] == 9 and removed["gp_event"] > 0 and removed["apc_diagnosis"] > 0
    # The opt-out list itself is never stored.
    eng = open_store(store)
    assert "opt_out" not in eng.tables()
    eng.close()


@pytest.mark.parametrize("purpose", ["direct-care"])
def test_direct_care_keeps_opted_out_people_and_logs_why(demo_source: Path, tmp_path: Path, purpose: str) -> None:
    store = store_path(tmp_path, "duckdb")
    result = ingest(demo_source, store, key=KEY, purpose=purpose, extract_date=EXTRACT)
    assert all(o.opted_out == 0 for o in result.outcomes)
    assert _opted_out_pseudonyms(demo_source) <= set(read_table(store, "person")["person_id"])
    log = read_table(store, "run_log")
    assert log.filter(metric="purpose")["detail"].to_list() == [purpose]
    assert log.filter(metric="not_applied").height == 1
