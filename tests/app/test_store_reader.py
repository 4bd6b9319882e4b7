"""The store reader under concurrent requests: one build per store version, member lists read once and kept."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pytest

from openphm.analytics.aggregates import NATIONAL_CODE
from openphm.app import data
from openphm.app.accounts import Scope
from tests.support.app import HIERARCHY


def test_concurrent_first_requests_build_once_and_lists_match_the_store(
    app_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sixteen requests at once on a new store version compute the published tables once (the rest wait for it),
    and every member list comes from one read of the store, equal to a direct count of cohort_member."""
    builds: list[int] = []
    published = data.published_tables

    def slow_published(*args: Any, **kwargs: Any) -> Any:
        builds.append(1)
        time.sleep(0.3)  # long enough for the other threads to arrive while it builds
        return published(*args, **kwargs)

    monkeypatch.setattr(data, "published_tables", slow_published)
    reader = data.StoreReader(app_store)
    with ThreadPoolExecutor(16) as pool:
        snapshots = list(pool.map(lambda _: reader.snapshot(), range(32)))
    assert len(builds) == 1 and all(s is snapshots[0] for s in snapshots)

    reads: list[object] = []
    read_members = data.StoreReader._read_members

    def counted(eng: Any, snapshot: Any, wanted: Any) -> Any:
        reads.append(wanted)
        return read_members(eng, snapshot, wanted)

    monkeypatch.setattr(data.StoreReader, "_read_members", staticmethod(counted))
    national = (Scope("national", NATIONAL_CODE),)
    cohorts = snapshots[0].cohorts
    with ThreadPoolExecutor(16) as pool:
        lists = list(pool.map(lambda c: reader.members(c, national, None, None), cohorts * 4))
    assert reads == [None]  # every cohort's latest members in one query, kept for the version

    with duckdb.connect(str(app_store), read_only=True) as con:
        expected = dict(
            con.sql(
                "SELECT cohort, count(*) FROM cohort_member m WHERE as_of = "
                "(SELECT max(as_of) FROM cohort_member WHERE cohort = m.cohort) GROUP BY cohort"
            ).fetchall()
        )
    assert {c: f.height for c, f in zip(cohorts * 4, lists, strict=True)} == {c: expected.get(c, 0) for c in cohorts}
    assert sum(expected.values()) > 0

    practice, (pcn, *_) = next(iter(HIERARCHY.items()))
    busiest = max(expected, key=lambda c: expected[c])
    in_pcn = reader.members(busiest, (Scope("pcn", pcn),), None, None)
    at_practice = reader.members(busiest, (Scope("pcn", pcn),), practice, None)
    everyone = reader.members(busiest, national, None, None)
    assert 0 < at_practice.height <= in_pcn.height < everyone.height
    assert set(at_practice["practice_code"]) == {practice}
    pcn_practices = {p for p, chain in HIERARCHY.items() if chain[0] == pcn}
    assert set(in_pcn["practice_code"]) <= pcn_practices
    risk = everyone["admission_risk"].drop_nulls().to_list()
    assert risk == sorted(risk, reverse=True)  # a case-finding list: highest risk first
    assert reader.members(busiest, (), None, None).height == 0  # no scope, no rows
    assert reads == [None]
