"""Gather a report from a store: the areas and their hierarchy, each area's charts, and the methods.

Figures come only from disclosure-controlled tables (:func:`openphm.analytics.published.published_tables`).
The methods section reads the run log, the quarantine table and the definitions' manifests; its counts go
through the same disclosure rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from importlib.resources import files
from pathlib import Path

import narwhals as nw
import numpy as np
import polars as pl

from openphm.analytics.aggregates import NATIONAL_CODE, NATIONAL_NAME
from openphm.analytics.disclosure import POLICIES, Policy, protect, round_counts, suppress
from openphm.codes import Definition as ShippedDefinition
from openphm.codes import load_definitions
from openphm.cohorts.definitions import load_cohorts
from openphm.engine import Engine, open_store
from openphm.errors import StoreError
from openphm.ingest.policy import check_output_purpose, store_governance
from openphm.pipeline.runlog import last_purpose
from openphm.quality import TABLE as QUALITY
from openphm.quality.checks import COUNTS_PERIODS
from openphm.quality.history import latest_extract, ordered
from openphm.report.data import Context, Entry, entries
from openphm.report.model import LEVELS, Area, Coverage, Definition, Methods, QualityRow, Report
from openphm.report.published import published

PIPELINE_TABLES = {
    "segment": "segments, need tiers, transitions and projections",
    "activity": "cost per head and activity rates",
    "register": "register prevalence",
    "cohort_member": "cohort sizes",
}
"""Pipeline tables the figures depend on, and what is missing without each (said in the methods)."""


def _dates(frame: pl.DataFrame, column: str) -> list[date]:
    return sorted(set(frame[column].drop_nulls().to_list())) if column in frame.columns else []


def hierarchy(eng: Engine, latest: date | None, names: Mapping[tuple[str, str], str]) -> list[Area]:
    """Areas from the top down, each with its parent: from the geography codes of the population at ``latest``.

    A practice whose PCN (or any level above) is unknown cannot be reached by drilling down, so it is left
    out of the picker; its people still count in every area above the gap.
    """
    areas = [Area("national", "", names.get(("national", NATIONAL_CODE), NATIONAL_NAME), None)]
    if latest is None or not eng.has_table("population"):
        return areas
    columns = [f"{level}_code" for level, _ in LEVELS[1:]]
    rows = (
        eng.table("population")
        .filter(nw.col("in_population") & (nw.col("as_of") == nw.lit(latest)))
        .select(*columns)
        .unique()
        .collect(backend="polars")
        .to_native()
        .sort(columns, nulls_last=True)
        .rows()
    )
    seen: set[str] = set()
    for codes in rows:
        parent = "national"
        for (level, _), code in zip(LEVELS[1:], codes, strict=True):
            if code is None:
                break
            area = Area(level, code, names.get((level, code)) or code, parent)
            if area.key not in seen:
                seen.add(area.key)
                areas.append(area)
            parent = area.key
    order = {level: i for i, (level, _) in enumerate(LEVELS)}
    return sorted(areas, key=lambda a: (order[a.level], natural(a.name), a.code))


def natural(name: str) -> list[tuple[int, object]]:
    """A sort key that puts 'Practice 2' before 'Practice 10'."""
    return [(1, int(part)) if part.isdigit() else (0, part.casefold()) for part in re.split(r"(\d+)", name) if part]


def _protect_row(values: list[int], policy: Policy) -> list[float | None]:
    """Cells of one line of counts whose total is also published (the line's total goes first)."""
    shown = protect(np.array([values]), policy)
    return [None if np.isnan(v) else float(v) for v in [shown.row_totals[0], *shown.cells[0]]]


def methods(eng: Engine, policy: Policy, as_of: list[date], shipped: Mapping[str, ShippedDefinition]) -> Methods:
    """Purpose, dates, coverage, quarantine, disclosure rule, QRISK3 disclaimer and definitions' versions."""
    log = eng.table("run_log").collect(backend="polars").to_native()
    extract = log.filter(pl.col("metric") == "extract_date").sort("recorded_at")["detail"].to_list()
    ingests = log.filter(pl.col("command") == "ingest").sort("recorded_at")["run_id"].to_list()
    coverage = []
    if ingests:
        facts = log.filter((pl.col("run_id") == ingests[-1]) & (pl.col("step") == "reconcile"))
        for table in sorted(set(facts["item"].to_list())):
            values = dict(facts.filter(pl.col("item") == table).select("metric", "value").iter_rows())
            parts = [int(values.get(m) or 0) for m in ("loaded", "quarantined", "opted_out")]
            coverage.append(Coverage(table, *_protect_row(parts, policy)))
    quarantine = []
    if eng.has_table("quarantine"):
        counts = eng.table("quarantine").group_by("table", "reason").agg(nw.len()).collect(backend="polars").to_native()
        for table in sorted(set(counts["table"].to_list())):
            rows = counts.filter(pl.col("table") == table).sort("reason")
            shown = _protect_row(rows["len"].to_list(), policy)[1:]
            quarantine += [(table, reason, n) for reason, n in zip(rows["reason"].to_list(), shown, strict=True)]
    quality, quality_counts = quality_rows(eng, policy)
    return Methods(
        purpose=last_purpose(eng) or "not recorded",
        as_of=[d.isoformat() for d in as_of],
        extract_date=extract[-1] if extract else None,
        policy=policy.name,
        disclosure=disclosure_text(policy),
        coverage=coverage,
        quarantine=quarantine,
        quality=quality,
        quality_counts=quality_counts,
        qrisk3_disclaimer=qrisk3_disclaimer(),
        definitions=used_definitions(eng, shipped),
        notes=[
            f"The store has no '{table}' table, so the report shows no {what}."
            for table, what in PIPELINE_TABLES.items()
            if not eng.has_table(table)
        ],
    )


def quality_rows(eng: Engine, policy: Policy) -> tuple[list[QualityRow], dict[str, int]]:
    """The latest extract's failed and warned checks, failures first, with counts as the policy publishes them.

    The counts are of records for data management, like the quarantine's, but a practice's or a month's count
    can be small, so each passes through the disclosure rule (no secondary suppression: numerator and
    denominator are not cells of one table), and the rate is recomputed from what is published. Counts of
    months (months with no data) say nothing about anyone and are shown exactly.
    """
    if not eng.has_table(QUALITY):
        return [], {}
    rows = ordered(latest_extract(pl.DataFrame(eng.table(QUALITY).collect(backend="pyarrow").to_native())))
    statuses = {status: n for status, n in rows.group_by("status").len().iter_rows()}
    shown = rows.filter(pl.col("status") != "pass")
    values = np.concatenate([shown["numerator"].to_numpy(), shown["denominator"].to_numpy()]).astype(np.int64)
    empty = np.zeros(0, dtype=np.int64)
    published = round_counts(values, suppress(values, empty, empty, policy), policy)
    periods = np.tile(shown["check"].is_in(list(COUNTS_PERIODS)).to_numpy(), 2)
    published = np.where(periods, values.astype(np.float64), published)
    numerators, denominators = published[: shown.height], published[shown.height :]
    out = []
    for row, n, d in zip(shown.iter_rows(named=True), numerators, denominators, strict=True):
        known = not (np.isnan(n) or np.isnan(d)) and d > 0
        out.append(
            QualityRow(
                status=row["status"],
                check_id=row["check_id"],
                description=row["description"],
                where="all" if row["level"] == "all" else f"{row['level']} {row['level_key']}",
                numerator=None if np.isnan(n) else float(n),
                denominator=None if np.isnan(d) else float(d),
                rate=float(n / d) if known else None,
                threshold=row["threshold"],
            )
        )
    return out, statuses


def disclosure_text(policy: Policy) -> str:
    if policy.is_none:
        return (
            "Policy 'none': counts are exact and small numbers are shown. This is allowed only for direct care; "
            "the report must not leave the care team."
        )
    return (
        f"Policy '{policy.name}': every count of people or records from 1 to {policy.redact_up_to} is redacted "
        f"(shown as 'redacted' and left out of charts) and every other count is rounded to the nearest "
        f"{policy.round_to}. Where a redacted count could be recovered from a total, the next smallest count is "
        "redacted too. Percentages, rates and costs per head are computed from the rounded counts. Standardised "
        "rates are not shown where the numerator is under 10. Projections are rounded and hidden the same way."
    )


def qrisk3_disclaimer() -> str | None:
    """ClinRisk's disclaimer as the QRISK3 implementation ships it, when it does."""
    path = files("openphm.content").joinpath("scores", "qrisk3", "DISCLAIMER.txt")
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def used_definitions(eng: Engine, shipped: Mapping[str, ShippedDefinition]) -> list[Definition]:
    """The definitions behind the store's registers, with the shipped manifests' versions."""
    ids: list[str] = []
    if eng.has_table("register"):
        ids = sorted(eng.table("register").select("definition").unique().collect(backend="polars")["definition"])
    ids = ids or sorted(shipped)
    out = []
    for i in ids:
        d = shipped.get(i)
        if d is None:
            out.append(Definition(i, i, "own definition", "not recorded", "unknown"))
        else:
            out.append(Definition(d.id, d.name, d.kind, d.version, d.completeness))
    return out


def _partition(frame: pl.DataFrame) -> dict[tuple[str, str], pl.DataFrame]:
    if frame.is_empty() or "level" not in frame.columns:
        return {}
    return {(str(k[0]), str(k[1])): v for k, v in frame.partition_by("level", "area_code", as_dict=True).items()}


def build_report(
    store: Path,
    engine: str = "duckdb",
    policy: str = "nhs",
    progress: Callable[[str], None] | None = None,
    purpose: str | None = None,
    allow_purpose_mismatch: bool = False,
) -> Report:
    """Everything the page shows, gathered from ``store``.

    ``purpose`` is what the report is for: planning, unless exact counts (policy none) make it a report for
    direct care. A store whose ingest did not apply the opt-outs that purpose needs is refused, unless
    overridden, and the override is stated on the page.
    """
    step = progress or (lambda _message: None)
    rule = POLICIES[policy]
    output_purpose = purpose or ("direct-care" if policy == "none" else "planning")
    eng = open_store(store, engine)
    try:
        if policy == "none" and last_purpose(eng) != "direct-care":
            raise StoreError(f"{store}: policy 'none' (exact counts) is allowed only for a direct-care store")
        governance = store_governance(eng)
        overridden = check_output_purpose(governance, output_purpose, allow_purpose_mismatch)
        if not eng.has_table("agg_population"):
            raise StoreError(f"{store}: has no analytics tables; run 'phm run' first")
        step("reading published tables")
        tables = published(eng, store, engine, rule)
        population = tables["agg_population"]
        as_of = _dates(population, "as_of")
        latest = as_of[-1] if as_of else None
        names = {
            (level, code): name
            for level, code, name in population.select("level", "area_code", "area_name").unique().iter_rows()
        } if not population.is_empty() else {}  # fmt: skip
        step("areas")
        areas = hierarchy(eng, latest, names)
        step("methods")
        definitions = load_definitions()
        method = methods(eng, rule, as_of, definitions)
        method.output_purpose = output_purpose
        method.opt_outs = governance.statement()
        method.warnings = governance.warnings(datetime.now(UTC).date())
        if overridden:
            method.warnings.append(
                f"Made for {output_purpose} from a store ingested for {governance.purpose}, under an explicit "
                "override (--allow-purpose-mismatch): the opt-outs that purpose requires were not all applied."
            )
    finally:
        eng.close()
    if not population.is_empty():
        totals = population.filter((pl.col("level") == "national") & (pl.col("breakdown") == "total"))
        method.population = [(d.isoformat(), n) for d, n in totals.sort("as_of").select("as_of", "people").iter_rows()]

    context = Context(
        latest=latest,
        policy=rule,
        names={d.id: d.name for d in definitions.values()} | {c.name: c.title for c in load_cohorts().values()},
        deficits_only=frozenset(d.id for d in definitions.values() if set(d.uses) == {"efi"}),
    )
    chart_entries = entries()
    by_area = {name: _partition(frame) for name, frame in tables.items()}
    data: dict[str, dict[str, dict[str, object]]] = {}
    for i, area in enumerate(areas):
        if i % 50 == 0:
            step(f"charts for area {i + 1} of {len(areas)}")
        code = NATIONAL_CODE if area.level == "national" else area.code
        own = {name: parts[(area.level, code)] for name, parts in by_area.items() if (area.level, code) in parts}
        if area.level == "national":
            own |= {name: frame for name, frame in tables.items() if "level" not in frame.columns}
        data[area.key] = _charts(chart_entries, own, context, national=area.level == "national")
    drawn = []
    for e in chart_entries:
        levels = {area.level for area in areas if e.chart.id in data[area.key]}
        if levels:
            drawn.append(replace(e.chart, levels=tuple(level for level, _ in LEVELS if level in levels)))
        else:
            method.notes.append(f"'{e.chart.title}' is left out: the store has no data for it.")
    return Report(
        title="Population health report",
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        latest_as_of=latest.isoformat() if latest else None,
        areas=areas,
        charts=drawn,
        data=data,
        methods=method,
    )


def _charts(
    chart_entries: list[Entry], tables: Mapping[str, pl.DataFrame], context: Context, *, national: bool
) -> dict:
    out = {}
    for entry in chart_entries:
        if entry.national_only and not national:
            continue
        built = entry.build(tables, context)
        if built is not None:
            if _has_redactions(built):
                built["note"] = " ".join(filter(None, [str(built.get("note") or ""), REDACTED_NOTE]))
            out[entry.chart.id] = built
    return out


REDACTED_NOTE = "Some values are redacted under the disclosure rule: they are missing from the chart (see the table)."


def _has_redactions(data: Mapping[str, object]) -> bool:
    if "links" in data:
        return any(link["value"] is None for link in data["links"])  # type: ignore[attr-defined]
    return any(v is None for s in data["series"] for v in s["values"])  # type: ignore[attr-defined]
