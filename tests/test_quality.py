"""The data-quality table catches planted problems, on every engine, with thresholds from the settings file.

A small synthetic population (``openphm.synth.generate``) is ingested twice into one store: first as
generated, then as a later extract with three problems planted in the source files - one month of A&E
attendances missing, 30% of one practice's people with their ethnicity blanked, and GP events dated
after their person's death. The clean extract passes the checks the plants must fail, so each failure is
the plant's doing; the second ingest keeps the first extract's rows and reports what changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from openphm.cli import app
from openphm.errors import InputError
from openphm.ingest import ingest
from openphm.options import RunOptions
from openphm.pipeline import run
from openphm.quality import HISTORY, TABLE, load_settings
from openphm.quality.history import changes, quality_view
from openphm.stages import by_name
from openphm.synth import generate
from tests.support.sources import ALICE, BOB, ENGINES, EXTRACT, KEY, person, read_table, store_path

PEOPLE = 2_000
MISSING_MONTH = "2023-06"
PRACTICES = ("SYN00001", "SYN00002", "SYN00003")
BLANKED_PRACTICE = "SYN00002"
LATER = timedelta(days=1)
"""The planted extract is dated a day later: a later extract with the same calendar of complete months."""


def _plant(clean: Path, planted: Path, extract: date) -> None:
    """Copy ``clean`` to ``planted`` with the three problems (and three practices to tell them apart)."""
    planted.mkdir()
    for file in clean.iterdir():
        (planted / file.name).write_bytes(file.read_bytes())
    person = pl.read_parquet(clean / "person.parquet").with_row_index("_i")
    person = person.with_columns(
        pl.lit(pl.Series(PRACTICES)).gather(pl.col("_i") % len(PRACTICES)).alias("practice_code")
    )
    in_blanked = person["practice_code"] == BLANKED_PRACTICE
    chosen = person.with_columns(
        ((pl.col("practice_code") == BLANKED_PRACTICE) & ((pl.col("_i") // len(PRACTICES)) % 10 < 3)).alias("_blank")
    )
    chosen = chosen.with_columns(pl.when(pl.col("_blank")).then(None).otherwise(pl.col("ethnicity")).alias("ethnicity"))
    assert in_blanked.sum() > 0
    chosen.drop("_i", "_blank").write_parquet(planted / "person.parquet")
    practice = pl.read_csv(clean / "practice.csv", infer_schema=False)
    copies = [practice.with_columns(pl.lit(code).alias("practice_code")) for code in PRACTICES[1:]]
    pl.concat([practice, *copies]).write_csv(planted / "practice.csv")

    ae = pl.read_parquet(clean / "ae_attendance.parquet")
    ae.filter(~pl.col("arrival_date").str.starts_with(MISSING_MONTH)).write_parquet(planted / "ae_attendance.parquet")

    died = person.filter(pl.col("date_of_death").is_not_null()).select("nhs_number", "date_of_death")
    events = pl.read_parquet(clean / "gp_event.parquet")
    after = (
        events.join(died, on="nhs_number", how="inner")
        .group_by("nhs_number")
        .first()
        .with_columns(
            (pl.col("date_of_death").str.to_date() + pl.duration(days=90)).alias("_day"),
        )
        .filter(pl.col("_day") <= extract)
        .with_columns(pl.col("_day").dt.to_string("%Y-%m-%d").alias("event_date"))
        .select(events.columns)
    )
    assert after.height > 10
    pl.concat([events, after, after, after]).write_parquet(planted / "gp_event.parquet")


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, date]:
    root = tmp_path_factory.mktemp("quality")
    result = generate(root / "clean", people=PEOPLE, seed=7)
    _plant(root / "clean", root / "planted", result.extract_date)
    return root / "clean", root / "planted", result.extract_date


@pytest.fixture(scope="module")
def stores(sources: tuple[Path, Path, date], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One store per engine: the clean extract, then the planted later extract ingested over it."""
    clean, planted, extract = sources
    out = {}
    for engine in ("duckdb", "polars"):
        store = store_path(tmp_path_factory.mktemp(engine), engine)
        ingest(clean, store, key=KEY, engine=engine, extract_date=extract)
        ingest(planted, store, key=KEY, engine=engine, extract_date=extract + LATER)
        out[engine] = store
    return out


def _rows(store: Path, engine: str, table: str = TABLE) -> pl.DataFrame:
    return read_table(store, table, engine)


def _one(rows: pl.DataFrame, check_id: str, level: str = "all", key: str = "") -> dict:
    found = rows.filter((pl.col("check_id") == check_id) & (pl.col("level") == level) & (pl.col("level_key") == key))
    assert found.height == 1, (check_id, level, key, found)
    return found.row(0, named=True)


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_planted_problems_fail_and_the_clean_extract_passes(stores: dict[str, Path], engine: str) -> None:
    now = _rows(stores[engine], engine)
    before = _rows(stores[engine], engine, HISTORY)

    # A month of A&E data missing: the month's volume against its neighbours, and the months present.
    month = _one(now, "ae_monthly_volume", "month", MISSING_MONTH)
    assert (month["status"], month["rate"]) == ("fail", 1.0)
    assert month["denominator"] > 20  # the expected volume, from the months around it
    assert _one(now, "ae_months_present")["numerator"] == 1
    assert _one(now, "ae_months_present")["status"] == "fail"
    assert _one(before, "ae_monthly_volume", "month", MISSING_MONTH)["status"] == "pass"
    assert _one(before, "ae_months_present")["status"] == "pass"

    # 30% of one practice's people without an ethnicity: that practice fails, the others do not.
    blanked = _one(now, "person_ethnicity_missing", "practice", BLANKED_PRACTICE)
    assert blanked["status"] == "fail"
    assert 0.3 <= blanked["rate"] <= 0.45
    for other in set(PRACTICES) - {BLANKED_PRACTICE}:
        assert _one(now, "person_ethnicity_missing", "practice", other)["status"] == "pass"
    assert _one(before, "person_ethnicity_missing")["status"] == "pass"

    # GP events after death.
    after = _one(now, "gp_event_after_death")
    assert after["status"] == "fail" and after["numerator"] > 30
    assert _one(before, "gp_event_after_death")["numerator"] == 0

    # Every row is an aggregate: no person's pseudonym or NHS number appears as a key.
    assert set(now["level"]) <= {"all", "practice", "month", "year"}
    assert (now["numerator"] <= now["denominator"]).all()
    assert set(now["status"]) <= {"pass", "warn", "fail"}


def test_the_same_table_on_duckdb_and_polars(stores: dict[str, Path]) -> None:
    from polars.testing import assert_frame_equal

    frames = [_rows(stores[e], e).sort(["check_id", "level", "level_key"]) for e in ("duckdb", "polars")]
    assert frames[0].height > 100
    assert_frame_equal(frames[0], frames[1], check_exact=False, rel_tol=1e-12)


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_a_later_extract_shows_what_changed(stores: dict[str, Path], engine: str, sources: tuple) -> None:
    _, _, extract = sources
    view = quality_view(stores[engine], engine)
    assert view.extract_date == extract + LATER
    assert view.compared_with == f"extract {extract}"
    worse = view.changes.filter(pl.col("change") == "worse")
    changed = set(zip(worse["check_id"], worse["level"], worse["level_key"], strict=True))
    assert ("ae_monthly_volume", "month", MISSING_MONTH) in changed
    assert ("gp_event_after_death", "all", "") in changed
    # The new practices did not exist before: a failing one is 'new', not 'worse'.
    new = view.changes.filter(pl.col("change") == "new")
    assert ("person_ethnicity_missing", "practice", BLANKED_PRACTICE) in set(
        zip(new["check_id"], new["level"], new["level_key"], strict=True)
    )
    assert view.rows["status"][0] == "fail"  # failures first
    itself = quality_view(stores[engine], engine, compare=stores[engine])  # --compare OLD_STORE
    assert itself.compared_with == f"store {stores[engine]}" and itself.changes.is_empty()


def test_phm_quality_prints_failures_first_and_the_changes(
    stores: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from openphm.cli.common import console

    monkeypatch.setattr(console, "width", 200)  # a wide terminal: no check id cut short
    result = CliRunner().invoke(app, ["quality", "--store", str(stores["duckdb"]), "--limit", "500"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "ae_monthly_volume" in text and "gp_event_after_death" in text
    assert "warn" in text and text.index("│ fail") < text.index("│ warn")
    assert "Changed since extract" in text
    missing = CliRunner().invoke(app, ["quality", "--store", str(stores["duckdb"]) + ".absent.duckdb"])
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_thresholds_from_a_replaced_settings_file_take_effect(stores: dict[str, Path], tmp_path: Path) -> None:
    """``phm run`` refreshes the table with the user's settings: only their checks, judged by their limits."""
    import shutil

    store = tmp_path / "copy.duckdb"
    shutil.copy(stores["duckdb"], store)
    settings = tmp_path / "quality.yaml"
    settings.write_text(
        "version: test\nmin_denominator: 20\nchecks:\n"
        "  - {id: ethnicity_lenient, category: completeness, check: not_null, table: person, column: ethnicity,\n"
        "     missing_values: [Z], levels: [all, practice], warn: 0.30, fail: 0.60}\n"
        "  - {id: ae_volume_strict, category: plausibility, check: volume_history, table: ae_attendance,\n"
        "     date: arrival_date, period: month, window: 48, neighbours: 3, warn: 0.0, fail: 0.999}\n",
        encoding="utf-8",
    )
    run(store, stages=[by_name()["data_quality"]], options=RunOptions(quality_settings=settings))
    rows = _rows(store, "duckdb")
    assert set(rows["check_id"]) == {"ethnicity_lenient", "ae_volume_strict"}
    assert _one(rows, "ethnicity_lenient", "practice", BLANKED_PRACTICE)["status"] == "warn"  # 0.3-0.45: not > 0.6
    assert _one(rows, "ae_volume_strict", "month", MISSING_MONTH)["status"] == "fail"  # rate 1 > 0.999
    assert rows.filter(pl.col("check_id") == "ae_volume_strict")["threshold"].unique().to_list() == [0.999]


def test_a_bad_settings_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("checks:\n  - {id: x, category: completeness, check: nonsense, table: person, warn: 0, fail: 0}\n")
    with pytest.raises(InputError, match="unknown check type 'nonsense'"):
        load_settings(bad)
    bad.write_text(
        "checks:\n  - {id: x, category: completeness, check: not_null, table: person, warn: 0.5, fail: 0.1}\n"
    )
    with pytest.raises(InputError, match="warn <= fail"):
        load_settings(bad)
    assert len(load_settings().checks) > 30


def test_changes_between_two_extracts_by_status() -> None:
    keys = {"check_id": ["a", "b", "c", "d"], "table": ["t"] * 4, "column": ["x"] * 4, "level": ["all"] * 4}
    common = {"category": ["coverage"] * 4, "description": ["d"] * 4, "numerator": [1] * 4, "denominator": [2] * 4}
    before = pl.DataFrame({**keys, "level_key": ["", "", "", ""], "status": ["pass", "fail", "warn", "pass"],
                           "rate": [0.0, 0.5, 0.2, 0.0], **common})  # fmt: skip
    now = pl.DataFrame({**keys, "level_key": ["", "", "", ""], "status": ["fail", "pass", "warn", "pass"],
                        "rate": [0.5, 0.0, 0.2, 0.0], **common})  # fmt: skip
    found = changes(now, before)
    assert dict(zip(found["check_id"], found["change"], strict=True)) == {"a": "worse", "b": "better"}


@pytest.mark.spark
def test_spark_gives_the_same_table(sources: tuple[Path, Path, date], stores: dict[str, Path], tmp_path: Path) -> None:
    from polars.testing import assert_frame_equal

    _, planted, extract = sources
    store = store_path(tmp_path, "spark")
    ingest(planted, store, key=KEY, engine="spark", extract_date=extract + LATER)
    ours = _rows(store, "spark").sort(["check_id", "level", "level_key"])
    duck = _rows(stores["duckdb"], "duckdb").sort(["check_id", "level", "level_key"])
    assert_frame_equal(ours, duck, check_exact=False, rel_tol=1e-12)


def test_the_report_section_publishes_record_counts_under_the_disclosure_rule(stores: dict[str, Path]) -> None:
    from openphm.disclosure import POLICIES
    from openphm.engine import open_store
    from openphm.report.build import quality_rows

    eng = open_store(stores["duckdb"], "duckdb")
    try:
        rows, counts = quality_rows(eng, POLICIES["nhs"])
    finally:
        eng.close()
    assert counts["fail"] == sum(r.status == "fail" for r in rows) and counts["pass"] > 100
    assert [r.status for r in rows] == sorted((r.status for r in rows), key=["fail", "warn"].index)
    months = next(r for r in rows if r.check_id == "ae_months_present")
    assert months.numerator == 1  # a count of months, not of records: exact
    for row in rows:
        if row.check_id != "ae_months_present":
            for n in (row.numerator, row.denominator):
                assert n is None or (n % 5 == 0 and not 0 < n <= 7)
    after = next(r for r in rows if r.check_id == "gp_event_after_death" and r.where == "all")
    assert after.rate == pytest.approx(after.numerator / after.denominator)


@pytest.mark.parametrize("engine", ENGINES)
def test_conformance_and_date_checks_on_hand_made_rows(
    source: Callable[[dict[str, list[dict[str, object]]]], Path], tmp_path: Path, engine: str
) -> None:
    """A SNOMED CT description id (partition 01) passes the contract's digits-only pattern but is no concept;
    an event before the month of birth and one 61 days after death are implausible, one 60 days after is not."""
    events = [
        {"nhs_number": ALICE, "event_date": "2020-01-01", "snomed_code": "22298006", "value": None, "unit": None},
        {"nhs_number": ALICE, "event_date": "2020-01-02", "snomed_code": "37436014", "value": None, "unit": None},
        {"nhs_number": ALICE, "event_date": "1950-05-01", "snomed_code": "22298006", "value": None, "unit": None},
        {"nhs_number": BOB, "event_date": "2024-03-01", "snomed_code": "22298006", "value": None, "unit": None},
        {"nhs_number": BOB, "event_date": "2024-03-02", "snomed_code": "22298006", "value": None, "unit": None},
        {"nhs_number": BOB, "event_date": "2023-12-01", "snomed_code": "22298006", "value": None, "unit": None},
    ]
    folder = source({"person": [person(ALICE), person(BOB, date_of_death="2024-01-01")], "gp_event": events})
    store = store_path(tmp_path, engine)
    ingest(folder, store, key=KEY, engine=engine, extract_date=EXTRACT)
    rows = _rows(store, engine)
    concept = _one(rows, "gp_event_snomed_concept")
    assert (concept["numerator"], concept["denominator"], concept["status"]) == (1, 6, "fail")
    assert _one(rows, "gp_event_before_birth")["numerator"] == 1  # 1950-05-01, born June 1950
    after = _one(rows, "gp_event_after_death")  # 2024-03-01 is 60 days after 2024-01-01; 03-02 is 61
    assert (after["numerator"], after["denominator"]) == (1, 3)
    assert _one(rows, "person_ethnicity_missing")["numerator"] == 0
