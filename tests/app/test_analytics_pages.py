"""The analytics pages and the SPC API: shapes, figures taken from the published tables, and the SPC rules
reproduced through the API on series crafted from the NHSRplotthedots cases of tests/test_spc.py."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from openphm.app.server import create_app
from tests.support.app import add_user, settings, sign_in

PAGES = {
    "/spc": "chart-spc",
    "/segments": "chart-segments_age_sex",
    "/registers": "chart-prevalence_compared",
    "/inequalities": "chart-inequality_imd",
    "/data": "chart-coverage",
}


@pytest.fixture
def viewer(make_client: Callable[..., TestClient]) -> TestClient:
    client = make_client()
    add_user(client, "vic", "viewer")
    assert sign_in(client, "vic") == 303
    return client


def _published(client: TestClient, table: str) -> pl.DataFrame:
    frame: pl.DataFrame = client.app.state.phm.store.snapshot().aggregates[table]  # type: ignore[attr-defined]
    return frame


def test_spc_api_shapes_and_limits(viewer: TestClient) -> None:
    measures = viewer.get("/api/spc").json()
    names = {m["name"] for m in measures}
    assert {"emergency_admissions", "ae_attendances", "outpatient_attendances"} <= names
    assert all(m["months"] > 0 and m["improvement"] in ("increase", "decrease", "neutral") for m in measures)

    answer = viewer.get("/api/spc/emergency_admissions", params={"level": "national", "rules": "mdc_excel"})
    assert answer.status_code == 200
    chart = answer.json()
    monthly = _published(viewer, "agg_monthly").filter(
        (pl.col("level") == "national") & (pl.col("segment") == "all") & (pl.col("measure") == "emergency_admissions")
    )
    by_month = monthly.group_by("month").agg(pl.col("value").sum(), pl.col("value").null_count().alias("hidden"))
    suppressed = by_month.filter(pl.col("hidden") > 0)["month"].sort()
    by_month = by_month.filter(pl.col("hidden") == 0).sort("month")
    values = [float(v) for v in by_month["value"]]
    assert chart["suppressed_months"] == [m.isoformat() for m in suppressed]  # left out, and named
    assert [p["value"] for p in chart["points"]] == values  # the published counts, month by month
    assert [p["month"] for p in chart["points"]] == [m.isoformat() for m in by_month["month"]]
    mean = sum(values) / len(values)
    moving = sum(abs(b - a) for a, b in itertools.pairwise(values)) / (len(values) - 1)
    assert chart["mean"] == pytest.approx(mean)
    assert chart["enough_points"] and len(values) >= 13
    assert chart["upper_limit"] == pytest.approx(mean + 2.66 * moving)
    assert chart["lower_limit"] == pytest.approx(mean - 2.66 * moving)
    assert chart["variation"] == chart["points"][-1]["point_type"]
    assert chart["assurance"] is None  # no target
    with_target = viewer.get("/api/spc/emergency_admissions", params={"target": 10 * max(values)}).json()
    assert with_target["assurance"] == "consistent_pass"  # fewer admissions is better; all far below the target

    practice = viewer.get("/api/spc/ae_attendances", params={"level": "practice", "area_code": "SYN00001"})
    assert practice.status_code == 200 and practice.json()["area_code"] == "SYN00001"
    assert viewer.get("/api/spc/no_such_measure").status_code == 404
    assert viewer.get("/api/spc/emergency_admissions", params={"level": "pcn", "area_code": "NOPE"}).status_code == 404


def _crafted_store(app_store: Path, tmp_path: Path) -> Path:
    """The app's store with `agg_monthly` replaced by two national series: tests/test_spc.py's 7-point trend case
    (x5 + 50) and its 7-point shift case (x10), multiples of 5 above 7 so that disclosure control keeps them."""
    pad = [-1.0, 9.0] * 5
    trend = [5 * v + 50 for v in [*pad, 1, 2, 3, 4, 5, 6, 7, *pad]]
    flat = [10.0 + (1.0 if i % 2 else -1.0) for i in range(20)]
    shift = [10 * v for v in flat[:7] + [10.5] * 7 + flat[14:]]
    rows = []
    for measure, values in (("emergency_admissions", trend), ("ae_attendances", shift)):
        for i, v in enumerate(values):
            month = date(2022 + i // 12, i % 12 + 1, 1)
            rows.append(
                {
                    "level": "national",
                    "area_code": "E92000001",
                    "area_name": "England",
                    "as_of": date(2025, 3, 31),
                    "month": month,
                    "segment": "all",
                    "measure": measure,
                    "value": int(v),
                }
            )
    store = tmp_path / "crafted.duckdb"
    shutil.copy2(app_store, store)
    con = duckdb.connect(str(store))
    crafted = pa.Table.from_pylist(rows)  # noqa: F841 (read by DuckDB's replacement scan)
    con.execute("DELETE FROM agg_monthly")
    con.execute("INSERT INTO agg_monthly SELECT * FROM crafted")
    con.close()
    return store


def test_spc_api_reproduces_the_reference_rules(app_store: Path, tmp_path: Path, new_db: Callable[[], str]) -> None:
    client = TestClient(create_app(settings(_crafted_store(app_store, tmp_path), new_db())), follow_redirects=False)
    add_user(client, "vic", "viewer")
    assert sign_in(client, "vic") == 303

    trend = client.get("/api/spc/emergency_admissions").json()
    causes = [p["special_cause"] for p in trend["points"]]
    # NHSRplotthedots' case 1:7 marks all seven points, here 10-16 (after the padding).
    assert [i for i, c in enumerate(causes) if c == "trend_increasing"] == list(range(10, 17))
    assert {p["point_type"] for p in trend["points"][10:17]} == {"special_cause_concern"}  # more admissions: worse
    assert [p["value"] for p in trend["points"][10:17]] == [55.0, 60.0, 65.0, 70.0, 75.0, 80.0, 85.0]

    shift = client.get("/api/spc/ae_attendances").json()
    assert [p["special_cause"] for p in shift["points"]][7:14] == ["shift_above"] * 7
    assert (
        "shift_above"
        not in [p["special_cause"] for p in shift["points"]][:7] + [p["special_cause"] for p in shift["points"]][14:]
    )
    assert shift["mean"] == pytest.approx(sum(p["value"] for p in shift["points"]) / 20)

    page = client.get("/spc", params={"measure": "ae_attendances"})
    assert page.status_code == 200 and "shift above" in page.text


def test_pages_render_with_chart_table_and_figures(viewer: TestClient) -> None:
    for path, container in PAGES.items():
        # Standardised rates of 1,000 people are mostly unreliable (not shown): the inequality page is national.
        place = {"level": "national"} if path == "/inequalities" else {"level": "pcn", "area_code": "PCN02"}
        page = viewer.get(path, params=place)
        assert page.status_code == 200, path
        assert f'id="{container}"' in page.text, path
        assert 'class="nhsuk-table' in page.text and f'id="table-{container.removeprefix("chart-")}"' in page.text
        assert "<script>" not in page.text and "style=" not in page.text  # nothing inline: the CSP forbids it
        chosen = "E92000001" if path == "/inequalities" else "PCN02"
        assert f'<option value="{chosen}" selected>' in page.text  # the geography picker, with the area chosen
        assert "/static/charts/vega-embed.min.js" in page.text
    assert 'hx-get="/partials/areas"' in page.text  # a new level swaps in its areas
    options = viewer.get("/partials/areas", params={"level": "pcn"})
    assert options.status_code == 200 and options.text.count("<option") == 2 and 'value="PCN02"' in options.text
    assert viewer.get("/static/charts/vega-interpreter.min.js").status_code == 200
    assert viewer.get("/static/charts.js").status_code == 200

    latest = max(_published(viewer, "agg_population")["as_of"])
    # Registers: the largest register's published count of the area.
    registers = _published(viewer, "agg_register").filter(
        (pl.col("level") == "pcn") & (pl.col("area_code") == "PCN02") & (pl.col("as_of") == latest)
    )
    top = registers.sort("people", descending=True, nulls_last=True).row(0, named=True)
    page = viewer.get("/registers", params={"level": "pcn", "area_code": "PCN02"}).text
    assert f"{top['people']:,}" in page and "Parent %" in page and "Peers %" in page

    # Segments: a published people count of the pyramid (segment, age band, sex) appears in its data table.
    pyramid = _published(viewer, "agg_population").filter(
        (pl.col("level") == "pcn")
        & (pl.col("area_code") == "PCN02")
        & (pl.col("as_of") == latest)
        & (pl.col("breakdown") == "segment+age_band+sex")
    )
    biggest = pyramid.sort("people", descending=True, nulls_last=True).row(0, named=True)
    page = viewer.get("/segments", params={"level": "pcn", "area_code": "PCN02"}).text
    assert f'<td class="nhsuk-table__cell--numeric">{biggest["people"]:,}</td>' in page
    assert 'id="chart-segments_ethnic"' in page and 'id="chart-transitions"' in page

    # SPC: the mean of the published series of the area.
    monthly = _published(viewer, "agg_monthly").filter(
        (pl.col("level") == "pcn")
        & (pl.col("area_code") == "PCN02")
        & (pl.col("segment") == "all")
        & (pl.col("measure") == "emergency_admissions")
    )
    values = monthly.group_by("month").agg(pl.col("value").sum(), pl.col("value").null_count().alias("n"))
    shown = values.filter(pl.col("n") == 0)["value"]
    page = viewer.get("/spc", params={"level": "pcn", "area_code": "PCN02"}).text
    assert f"{shown.mean():,.1f}" in page and "Variation" in page and "Assurance" in page

    # Inequalities: the national SII of emergency admissions.
    index = _published(viewer, "agg_inequality_index").filter(
        (pl.col("level") == "national") & (pl.col("measure") == "emergency_admissions") & (pl.col("as_of") == latest)
    )
    page = viewer.get("/inequalities").text
    sii = index["sii"][0]
    assert sii is not None and f"{sii:.2f}" in page and 'id="chart-inequality_core20"' in page
    core20 = _published(viewer, "agg_inequality").filter(
        (pl.col("level") == "national")
        & (pl.col("measure") == "emergency_admissions")
        & (pl.col("as_of") == latest)
        & (pl.col("group") == "Core20")
    )
    assert f'<td class="nhsuk-table__cell--numeric">{core20["dsr"][0]:,.1f}</td>' in page

    # Data: the snapshots and the tables' reconciliation.
    page = viewer.get("/data").text
    assert latest.isoformat() in page and 'id="coverage"' in page and 'id="quality"' in page and "planning" in page


def test_pages_refuse_bad_places(viewer: TestClient) -> None:
    assert viewer.get("/segments", params={"level": "pcn", "area_code": "NOPE"}).status_code == 404
    assert viewer.get("/registers", params={"as_of": "1999-01-01"}).status_code == 404
    assert viewer.get("/inequalities", params={"measure": "nothing"}).status_code == 404
    assert viewer.get("/data", params={"level": "county"}).status_code == 422
