"""The analytics stage on hand-made upstream tables: sums that must hold, engines that must agree, absent inputs.

The upstream tables (population, segment, activity, register, cohort_member, practice) are built here as small
frames, so these tests do not depend on the stages that produce them.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from openphm.analytics import AGG_TABLES
from openphm.analytics.aggregates import breakdowns
from tests.support.analytics import AS_OF, PEOPLE, _person, _tables, run_stage
from tests.support.sources import ENGINES


@pytest.fixture(scope="module")
def duckdb_out(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    return run_stage(tmp_path_factory.mktemp("duckdb"), "duckdb")


@pytest.mark.parametrize("engine", [e for e in ENGINES if getattr(e, "values", (e,))[0] != "duckdb"])
def test_engines_agree(duckdb_out: dict[str, pl.DataFrame], tmp_path: Path, engine: str) -> None:
    from polars.testing import assert_frame_equal

    other = run_stage(tmp_path, engine)
    assert sorted(other) == sorted(duckdb_out)
    for name, frame in duckdb_out.items():
        assert other[name].schema == frame.schema, name
        assert_frame_equal(other[name], frame, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
    assert duckdb_out["agg_population"].height > 1000 and duckdb_out["agg_inequality"].height > 100


def _in_population() -> pl.DataFrame:
    return pl.from_arrow(_tables()["population"]).filter(pl.col("in_population"))  # type: ignore[return-value]


def test_totals_and_breakdowns_add_up(duckdb_out: dict[str, pl.DataFrame]) -> None:
    agg = duckdb_out["agg_population"]
    people = _in_population()
    totals = agg.filter(level="national", breakdown="total").sort("as_of")
    assert totals["people"].to_list() == people.group_by("as_of").len().sort("as_of")["len"].to_list()
    assert totals["area_name"].to_list() == ["England", "England"]
    # Every breakdown of every area adds up to the area's total.
    sums = agg.group_by("level", "area_code", "as_of", "breakdown").agg(pl.col("people").sum())
    whole = agg.filter(breakdown="total").select("level", "area_code", "as_of", pl.col("people").alias("total"))
    checked = sums.join(whole, on=["level", "area_code", "as_of"])
    assert (checked["people"] == checked["total"]).all()
    assert set(agg["breakdown"].unique()) == {"+".join(b) or "total" for b in breakdowns(True)}
    # Practices add up to their PCN, PCNs to the sub-ICB; the segment counts are the hand-counted ones.
    for child, parent in (("practice", "pcn"), ("pcn", "sub_icb")):
        a = agg.filter(level=child, breakdown="segment").group_by("as_of", "segment").agg(pl.col("people").sum())
        b = agg.filter(level=parent, breakdown="segment").group_by("as_of", "segment").agg(pl.col("people").sum())
        assert a.sort("as_of", "segment").equals(b.sort("as_of", "segment"))
    g1 = agg.filter(level="practice", area_code="G1", breakdown="total", as_of=AS_OF[1])
    assert g1["people"].item() == people.filter(practice_code="G1", as_of=AS_OF[1]).height
    assert g1["area_name"].item() == "Practice G1"
    admissions = agg.filter(level="national", breakdown="total", as_of=AS_OF[0])["emergency_admissions"].item()
    activity = pl.from_arrow(_tables()["activity"]).filter(as_of=AS_OF[0])
    assert admissions == activity["emergency_admissions"].sum()
    row = agg.filter(level="national", breakdown="total", as_of=AS_OF[0]).to_dicts()[0]
    assert row["emergency_admissions_per_1000"] == pytest.approx(1000 * admissions / row["people"])
    assert row["cost_per_head"] == pytest.approx(row["cost_total"] / row["people"])


def test_the_maternal_flag_is_counted_in_every_segment(duckdb_out: dict[str, pl.DataFrame]) -> None:
    """agg_population.maternal counts the flag whatever the segment, per area and breakdown."""
    agg = duckdb_out["agg_population"]
    segment = pl.from_arrow(_tables()["segment"]).filter(as_of=AS_OF[0])
    expected = segment.group_by("segment").agg(pl.col("maternal").sum().cast(pl.Int64)).sort("segment")
    got = agg.filter(level="national", breakdown="segment", as_of=AS_OF[0]).select("segment", "maternal")
    assert got.sort("segment").equals(expected)
    assert (expected["maternal"] > 0).all()  # flagged people sit in every segment, not only maternal_and_infant
    total = agg.filter(level="national", breakdown="total", as_of=AS_OF[0])["maternal"].item()
    assert total == segment["maternal"].sum()


def test_transitions_add_up_to_both_populations(duckdb_out: dict[str, pl.DataFrame]) -> None:
    moves = duckdb_out["agg_transition"]
    agg = duckdb_out["agg_population"].filter(breakdown="total")
    for level, code in (("national", "E92000001"), ("practice", "G1"), ("practice", "G3"), ("pcn", "P1")):
        area = moves.filter(level=level, area_code=code)
        before = area.filter(pl.col("from_segment") != "joined")["people"].sum()
        after = area.filter(~pl.col("to_segment").is_in(["died", "left"]))["people"].sum()
        populations = agg.filter(level=level, area_code=code).sort("as_of")["people"].to_list()
        assert [before, after] == populations, (level, code)
    national = moves.filter(level="national")
    deaths = [i for i in range(PEOPLE) if i % 23 == 0 and _person(i, AS_OF[0])["in_population"]]
    assert national.filter(to_segment="died")["people"].sum() == len(deaths)
    # Movers from G1 to G3 left G1 and joined G3, but stayed within the national population.
    movers = [i for i in range(PEOPLE) if i % 3 == 0 and i % 17 == 0 and _person(i, AS_OF[1])["in_population"]]
    movers = [i for i in movers if _person(i, AS_OF[0])["in_population"]]
    joined_g3 = moves.filter(level="practice", area_code="G3", from_segment="joined")["people"].sum()
    assert joined_g3 >= len(movers) > 0


def test_registers_cohorts_inequalities_and_forecast(duckdb_out: dict[str, pl.DataFrame]) -> None:
    people = _in_population().filter(as_of=AS_OF[1])
    diabetes = duckdb_out["agg_register"].filter(level="national", definition="diabetes", as_of=AS_OF[1]).to_dicts()[0]
    expected = people.filter(pl.col("person_id").str.slice(1).cast(pl.Int64) % 4 == 0).height
    assert diabetes["people"] == expected and diabetes["population"] == people.height
    assert diabetes["kind"] == "condition"
    assert diabetes["prevalence_pct"] == pytest.approx(100 * expected / people.height)
    cohort = duckdb_out["agg_cohort"].filter(level="national", as_of=AS_OF[1])["people"].item()
    assert cohort == people.filter(pl.col("age") >= 75).height
    inequality = duckdb_out["agg_inequality"]
    assert {"segment:healthy", "register:diabetes", "emergency_admissions", "cost_total"} <= set(inequality["measure"])
    assert "register:statins" not in set(inequality["measure"])  # medicines are not standardised prevalences
    assert set(inequality["group_type"]) == {"all", "imd_quintile", "imd_decile", "ethnic_group", "core20"}
    index = duckdb_out["agg_inequality_index"].filter(level="national", measure="emergency_admissions")
    assert index.height == 2 and (index["deciles"] == 10).all() and index["sii"].null_count() == 0
    projection = duckdb_out["agg_forecast"].filter(level="national", segment="all", measure="people").sort("year")
    assert projection["year"].to_list() == [0, 1, 2, 3, 4, 5]
    assert projection["value"][0] == people.height


def test_absent_inputs_give_nulls_and_empty_tables_never_zeros(tmp_path: Path) -> None:
    absent = ("segment", "activity", "register", "cohort_member", "practice")
    out = run_stage(tmp_path, "polars", absent)
    agg = out["agg_population"]
    assert agg.height > 0
    assert agg["segment"].null_count() == agg.height and agg["need_tier"].null_count() == agg.height
    assert not any("segment" in b or "need_tier" in b for b in agg["breakdown"].unique())
    for column in ("emergency_admissions", "cost_total", "cost_per_head", "maternal"):
        assert agg[column].null_count() == agg.height
    assert agg.filter(level="practice")["area_name"].null_count() == agg.filter(level="practice").height
    for name in AGG_TABLES:
        if name != "agg_population":
            assert out[name].height == 0, name
    facts = out["analytics_facts"]
    assert sorted(facts["item"]) == sorted(f"input:{t}" for t in absent)
    assert set(AGG_TABLES) <= set(out)


def test_every_column_of_every_table_is_documented(duckdb_out: dict[str, pl.DataFrame]) -> None:
    """docs/analytics.md is the schema the report builds against: it must name every table and column."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "analytics.md").read_text(encoding="utf-8")
    for name, frame in duckdb_out.items():
        if name.startswith("agg_"):
            assert f"`{name}`" in text, name
            missing = [c for c in frame.columns if f"`{c}`" not in text]
            assert not missing, (name, missing)
