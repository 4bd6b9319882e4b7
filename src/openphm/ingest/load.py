"""Ingest: a source folder in the input contract becomes a new, pseudonymised store.

Order of work: check every file's header (a bad file stops the run before anything is written) ->
build the pseudonym map -> find the people an opt-out removes under the purpose's policy (the ``opt_out``
list, Type 1 objections in ``gp_event``, people missing from the national check's ``opt_out_cleared``) ->
validate and quarantine each table, parents before children, after dropping those people's rows -> write
the canonical tables, ``quarantine`` and ``run_log`` -> publish the store atomically.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import narwhals as nw
import pyarrow as pa
import pyarrow.csv as pacsv

from openphm.content import content_path
from openphm.contract.reader import SourceFile, discover, read, source_extract_date
from openphm.contract.schema import TABLES
from openphm.engine import Engine, building, count, distinct
from openphm.errors import InputError
from openphm.ingest.policy import REMOVED, Policy, Purpose, load_policy, type1_codes
from openphm.ingest.pseudonymise import KeyedHash, normalise_nhs_number
from openphm.ingest.rules import CALENDAR_DATE, Check, nhs_number_valid
from openphm.ingest.tables import Outcome, Parent, identify, ids_in_clear, mark_removed, split
from openphm.pipeline.refresh import carry_previous, key_check
from openphm.pipeline.runlog import RunLog
from openphm.quality import HISTORY, Inputs, QualitySettings, assess, load_settings
from openphm.quality import TABLE as QUALITY
from openphm.quality.history import keep_history, previous_rows
from openphm.spells import with_spell_ids
from openphm.tables import CARRIED

PURPOSES = tuple(load_policy().purposes)
CLEARED_MAX_AGE_DAYS = 30
"""How old the national check may be before outputs warn (openphm's default, not a figure from the policy)."""
PERSON_GEOGRAPHY = ("pcn_code", "sub_icb_code", "icb_code", "region_code")
_ORDER = (
    "lsoa",
    "practice",
    "person",
    "apc_episode",
    "apc_diagnosis",
    "apc_procedure",
    "gp_event",
    "gp_medication",
    "ae_attendance",
    "op_appointment",
    "community_contact",
    "mh_contact",
    "social_care_service",
    "waiting_list",
)

Progress = Callable[[str], None]


@dataclass
class IngestResult:
    """What an ingest did; every figure is also in the store's ``run_log``."""

    store: Path
    run_id: str
    purpose: str
    extract_date: date
    outcomes: list[Outcome] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    policy_version: str = ""
    people_removed: dict[str, int] = field(default_factory=dict)
    """People removed by each source that applied (``opted_out_list``, ``opted_out_type1``, ``not_cleared``)."""
    cleared_checked_on: date | None = None


def default_lsoa(engine: Engine) -> nw.LazyFrame:
    """IMD 2019 for every English LSOA, shipped with the package (Open Government Licence v3.0)."""
    with content_path("reference", "lsoa_imd2019.csv.gz").open("rb") as raw, gzip.open(raw) as handle:
        table = pacsv.read_csv(
            handle,
            convert_options=pacsv.ConvertOptions(
                column_types={
                    "lsoa_code": pa.string(),
                    "imd_decile": pa.int64(),
                    "la_code": pa.string(),
                    "la_name": pa.string(),
                },
                include_columns=["lsoa_code", "imd_decile", "la_code", "la_name"],
            ),
        )
    return engine.frame(table)


def _pseudonym_map(
    engine: Engine, raw: dict[str, nw.LazyFrame], sources: dict[str, SourceFile], key: bytes
) -> nw.LazyFrame | None:
    """Distinct valid NHS numbers of every table -> pseudonym, hashed once per person."""
    numbers = [
        raw[name].select(normalise_nhs_number("nhs_number").alias("nhs_number"))
        for name, src in sources.items()
        if src.id_column == "nhs_number"
    ]
    if not numbers:
        return None
    # Distinct first: the Modulus 11 check then runs once per person, not once per event row.
    numbers_once = engine.persist(nw.concat(numbers, how="vertical").pipe(distinct))
    valid = engine.persist(numbers_once.filter(nhs_number_valid(nw.col("nhs_number"))))
    return engine.persist(engine.map_strings(valid, "nhs_number", "person_id", KeyedHash(key)))


def _person(loaded: nw.LazyFrame, lsoa: nw.LazyFrame, practice: nw.LazyFrame | None) -> nw.LazyFrame:
    """The canonical person table: birth date kept to the month, deprivation and geography joined."""
    month_start = nw.concat_str([nw.col("date_of_birth").dt.to_string("%Y-%m"), nw.lit("-01")])
    person = loaded.with_columns(month_start.str.to_date("%Y-%m-%d").alias("date_of_birth")).join(
        lsoa.select("lsoa_code", "imd_decile"), on="lsoa_code", how="left"
    )
    person = person.with_columns(((nw.col("imd_decile") + 1) // 2).cast(nw.Int64).alias("imd_quintile"))
    if practice is not None:
        person = person.join(practice.select("practice_code", *PERSON_GEOGRAPHY), on="practice_code", how="left")
    else:
        person = person.with_columns(*[nw.lit(None, dtype=nw.String).alias(c) for c in PERSON_GEOGRAPHY])
    return person


def ingest(
    source: Path,
    store: Path,
    *,
    key: bytes,
    purpose: str = "planning",
    engine: str = "duckdb",
    extract_date: date | None = None,
    progress: Progress | None = None,
    policy: Path | None = None,
    cleared_max_age_days: int = CLEARED_MAX_AGE_DAYS,
    quality_settings: Path | None = None,
    shared_key_file: bool = False,
) -> IngestResult:
    """Validate, pseudonymise and load ``source`` into a new store at ``store``, with its ``data_quality``.

    ``purpose`` is fixed here for the life of the store: which opt-outs apply follows from it and from
    ``policy`` (the shipped ``purposes.yaml`` unless a deployment supplies its own), and every later
    output states both. The previous store at ``store`` is replaced only when the whole ingest has
    succeeded; its data-quality rows are carried into the new store as ``data_quality_history``
    (docs/data-quality.md).
    ``shared_key_file``: the key came from a file other users may read, allowed by the user; it is logged.
    """
    rules = load_policy(policy)
    rule = rules.purpose(purpose)
    settings = load_settings(quality_settings)  # a bad settings file stops the run before any work
    sources, ignored = discover(source)
    extract_date = extract_date or source_extract_date(source) or date.today()
    log = RunLog("ingest", purpose, engine)
    log.add("ingest", "extract_date", "extract_date", detail=extract_date.isoformat())
    log.add("ingest", "key", "key_check", detail=key_check(key))
    _log_policy(log, rules, rule, cleared_max_age_days)
    for name in ignored:
        log.add("ingest", name, "ignored_file")
    if shared_key_file:
        log.add("ingest", "key_file", "shared_key_file_allowed", detail="other users may read the key file")
    result = IngestResult(store, log.run_id, purpose, extract_date, ignored_files=ignored, policy_version=rules.version)
    step = progress or (lambda _message: None)

    previous, no_history = previous_rows(store, engine)
    with building(store, engine, start_from_existing=False) as eng:
        _load_all(eng, sources, key, rule, extract_date, log, result, step)
        step("data quality")
        write_quality(eng, log, settings, extract_date)
        if previous is not None:
            kept = keep_history(eng, previous, extract_date)
            log.add("quality", HISTORY, "rows", kept)
        else:
            log.add("quality", HISTORY, "not_kept", detail=no_history)
        step("carrying the previous run")
        carry_previous(store, engine, eng, log, key, CARRIED)
        log.write(eng)
    return result


def _log_policy(log: RunLog, policy: Policy, rule: Purpose, cleared_max_age_days: int) -> None:
    """The policy the store was made under: version, what applies, and why (read back by every output)."""
    log.add("opt_out", "policy", "policy_version", detail=policy.version)
    log.add("opt_out", "policy", "basis", detail=rule.basis)
    for source in REMOVED:
        log.add("opt_out", source, "applies", 1.0 if rule.applies(source) else 0.0)
    log.add("opt_out", "opt_out_cleared", "max_age_days", cleared_max_age_days)


def write_quality(eng: Engine, log: RunLog, settings: QualitySettings, extract_date: date) -> None:
    """Check the loaded tables and write ``data_quality``; the run's own reconciliation stands in for run_log."""
    started = time.perf_counter()
    tables: dict[str, nw.LazyFrame | None] = {name: eng.table(name) for name in eng.tables()}
    tables["run_log"] = eng.frame(log.arrow())
    eng.write(QUALITY, assess(Inputs(tables, eng, extract_date), settings))
    statuses = dict(eng.table(QUALITY).group_by("status").agg(nw.len()).collect().rows())
    log.add("quality", QUALITY, "settings", detail=f"{settings.source} (version {settings.version})")
    for status in ("fail", "warn", "pass"):
        log.add("quality", QUALITY, status, statuses.get(status, 0))
    log.add("quality", QUALITY, "seconds", time.perf_counter() - started)


def _read_all(eng: Engine, sources: dict[str, SourceFile]) -> tuple[dict[str, nw.LazyFrame], dict[str, int]]:
    """Read every file once through, so a malformed file stops the run here, named, before any work."""
    raw: dict[str, nw.LazyFrame] = {}
    rows: dict[str, int] = {}
    for name, src in sources.items():
        try:
            raw[name] = read(eng, src)
            rows[name] = _parsed_rows(raw[name])
        except Exception as exc:  # each engine has its own parse errors; none may reach the user raw
            raise InputError(
                f"{src.path}: cannot be read as {src.format.upper()} ({type(exc).__name__}: check the "
                "encoding is UTF-8 and every row has the header's number of fields)"
            ) from None
    return raw, rows


def _parsed_rows(frame: nw.LazyFrame) -> int:
    """The rows of a source file, every field parsed on the way.

    A bare row count is not enough: Polars counts lines without splitting them, so a row with more fields
    than the header would pass here and stop the ingest later with the engine's own error. Counting each
    column's nulls in the same pass makes every engine parse every field now.
    """
    names = frame.collect_schema().names()
    nulls = [nw.col(c).null_count().alias(f"_nulls_{i}") for i, c in enumerate(names)]
    return int(frame.select(nw.len().alias("_rows"), *nulls).collect()["_rows"].item())


def _load_all(
    eng: Engine,
    sources: dict[str, SourceFile],
    key: bytes,
    rule: Purpose,
    extract_date: date,
    log: RunLog,
    result: IngestResult,
    step: Progress,
) -> None:
    raw, input_rows = _read_all(eng, sources)
    step("pseudonymising")
    pseudonyms = _pseudonym_map(eng, raw, sources, key)
    supplied = [raw[name].select("person_id") for name, src in sources.items() if src.id_column == "person_id"]
    in_clear = ids_in_clear(eng, nw.concat(supplied, how="vertical")) if supplied else None
    identified = {}
    checks = {}
    for name, src in sources.items():
        if src.id_column:
            identified[name], checks[name] = identify(raw[name], src, pseudonyms, in_clear)
        else:
            identified[name], checks[name] = raw[name], []

    removed, cleared = _removed_people(eng, sources, identified, checks, input_rows, rule, extract_date, log, result)
    if removed is not None or cleared is not None:
        step("opt-outs")
        _count_people(sources, identified, removed, cleared, rule, log, result)

    loaded_keys: dict[str, nw.LazyFrame] = {}
    if "lsoa" not in sources:
        eng.write("lsoa", default_lsoa(eng))
    opted_episodes = None
    held = eng.checkpoint()  # the pseudonym map and opt-out lists, read by every table
    for name in _ORDER:
        if name not in sources:
            continue
        step(name)
        table = TABLES[name]
        frame = identified[name]
        if (removed is not None or cleared is not None) and table.person_level:
            frame = mark_removed(frame, removed, cleared)
            if name == "apc_episode":
                opted_episodes = eng.persist(
                    frame.filter(~nw.col("_opted_out").is_null()).select("episode_id", "_opted_out").pipe(distinct)
                )
                held = eng.checkpoint()  # read by the episode's child tables
        elif opted_episodes is not None and table.parent == ("apc_episode", "episode_id"):
            frame = mark_removed(frame, opted_episodes, None, "episode_id")
        parents = _parents(name, loaded_keys)
        loaded, quarantine, removed_rows = split(eng, table, frame, checks[name], parents, extract_date)
        if name == "person":
            loaded = _person(loaded, eng.table("lsoa"), eng.table("practice") if "practice" in sources else None)
        elif name == "apc_episode":  # every stored episode names its spell, supplied or derived
            loaded = with_spell_ids(loaded)
        eng.write(name, loaded)
        loaded = eng.table(name)
        if name in _KEYS:
            loaded_keys[name] = loaded.select(_KEYS[name])
        quarantine = eng.persist(quarantine)
        rows_quarantined = count(quarantine.select("row").pipe(distinct))
        outcome = Outcome(
            name,
            input_rows[name],
            count(loaded),
            rows_quarantined,
            sum(removed_rows.values()),
            tuple(sorted(removed_rows.items())),
        )
        _record(eng, log, result, outcome, quarantine)
        eng.release(held)  # this table's intermediate results: written, no longer needed


def _listed(
    eng: Engine,
    name: str,
    sources: dict[str, SourceFile],
    identified: dict[str, nw.LazyFrame],
    checks: dict[str, list[Check]],
    input_rows: dict[str, int],
    extract_date: date,
    log: RunLog,
    result: IngestResult,
) -> nw.LazyFrame | None:
    """A list of people (``opt_out``, ``opt_out_cleared``) validated and reconciled, but never stored."""
    if name not in sources:
        return None
    listed, quarantine, _ = split(eng, TABLES[name], identified[name], checks[name], [], extract_date)
    listed = eng.persist(listed)
    quarantine = eng.persist(quarantine)
    rows_quarantined = count(quarantine.select("row").pipe(distinct))
    _record(eng, log, result, Outcome(name, input_rows[name], count(listed), rows_quarantined, 0), quarantine)
    return listed


def type1_objectors(gp_event: nw.LazyFrame) -> nw.LazyFrame:
    """The people whose latest Type 1 entry in the GP record is a dissent (distinct ``person_id``).

    A filter by two small code lists first, so the rest touches a few rows per objector, not the record.
    Dates compare as ISO text, the same on every engine. Rules where the record is unclear, each resolved
    towards honouring the objection: a dissent and a withdrawal on the same day leave the dissent in force
    (the order within a day is not recorded, and a withdrawal must be shown to follow the dissent); a
    dissent without a valid date counts as the latest entry; a withdrawal without a valid date is ignored.
    """
    dissent, withdrawn = type1_codes()
    is_dissent = nw.col("snomed_code").is_in(dissent)
    dated = nw.when(nw.col("event_date").str.contains(CALENDAR_DATE).fill_null(False)).then(nw.col("event_date"))
    return (
        gp_event.filter(nw.col("snomed_code").is_in([*dissent, *withdrawn]) & ~nw.col("person_id").is_null())
        .select(
            "person_id",
            nw.when(is_dissent).then(dated.otherwise(nw.lit("9999-12-31"))).alias("_dissent"),
            nw.when(~is_dissent).then(dated).alias("_withdrawn"),
        )
        .group_by("person_id")
        .agg(nw.col("_dissent").max(), nw.col("_withdrawn").max())
        .filter(
            ~nw.col("_dissent").is_null()
            & (nw.col("_withdrawn").is_null() | (nw.col("_dissent") >= nw.col("_withdrawn")))
        )
        .select("person_id")
    )


def _removed_people(
    eng: Engine,
    sources: dict[str, SourceFile],
    identified: dict[str, nw.LazyFrame],
    checks: dict[str, list[Check]],
    input_rows: dict[str, int],
    rule: Purpose,
    extract_date: date,
    log: RunLog,
    result: IngestResult,
) -> tuple[nw.LazyFrame | None, nw.LazyFrame | None]:
    """(people removed by the list or Type 1, with the source; the cleared list), as the purpose requires.

    A person both listed and objecting is counted once, under the list; the cleared list removes only
    those neither other source removed, so each person is counted by exactly one source.
    """
    lists = (sources, identified, checks, input_rows, extract_date, log, result)
    parts = []
    listed = _listed(eng, "opt_out", *lists)
    if listed is not None and rule.opt_out_list:
        parts.append(listed.select("person_id").with_columns(nw.lit(1).alias("_rank")))
    elif listed is not None:
        log.add("opt_out", "opt_out", "not_applied", detail=f"purpose {rule.name}: the policy does not apply it")
    if "gp_event" in sources and rule.type1:
        parts.append(type1_objectors(identified["gp_event"]).with_columns(nw.lit(2).alias("_rank")))
    elif "gp_event" in sources:
        log.add("opt_out", "type1", "not_applied", detail=f"purpose {rule.name}: the policy does not apply it")

    cleared = None
    cleared_rows = _listed(eng, "opt_out_cleared", *lists)
    if cleared_rows is not None:
        checked_on = cleared_rows.select(nw.col("checked_on").max()).collect().item()
        if checked_on is not None:
            result.cleared_checked_on = checked_on
            log.add("opt_out", "opt_out_cleared", "checked_on", detail=checked_on.isoformat())
        if rule.cleared_list:
            cleared = eng.persist(cleared_rows.select("person_id").pipe(distinct))
        else:
            not_applied = f"purpose {rule.name}: the policy does not apply it"
            log.add("opt_out", "opt_out_cleared", "not_applied", detail=not_applied)
    elif rule.cleared_list:
        log.add("opt_out", "opt_out_cleared", "not_supplied", detail="no national check supplied: not applied")

    removed = None
    if parts:
        rank = nw.col("_rank").min()
        removed = eng.persist(
            nw.concat(parts, how="vertical")
            .group_by("person_id")
            .agg(rank)
            .select(
                "person_id",
                nw.when(nw.col("_rank") == 1)
                .then(nw.lit("opted_out_list"))
                .otherwise(nw.lit("opted_out_type1"))
                .alias("_opted_out"),
            )
        )
    return removed, cleared


def _count_people(
    sources: dict[str, SourceFile],
    identified: dict[str, nw.LazyFrame],
    removed: nw.LazyFrame | None,
    cleared: nw.LazyFrame | None,
    rule: Purpose,
    log: RunLog,
    result: IngestResult,
) -> None:
    """People (rows of the person table) removed by each source that applies: counts, never who."""
    people = mark_removed(identified["person"].select("person_id"), removed, cleared)
    counts = (
        people.filter(~nw.col("_opted_out").is_null())
        .pipe(distinct)
        .group_by("_opted_out")
        .agg(nw.len().alias("n"))
        .collect()
        .rows()
    )
    found = {str(source): int(n) for source, n in counts}
    applied = {REMOVED[s] for s in rule.applied if s != "cleared_list" or "opt_out_cleared" in sources}
    for source in REMOVED.values():
        if source in applied or source in found:
            result.people_removed[source] = found.get(source, 0)
            log.add("opt_out", source, "people_removed", found.get(source, 0))


_KEYS = {"person": "person_id", "apc_episode": "episode_id"}
"""Loaded tables that other tables must match, and the column they are matched on."""


def _parents(name: str, loaded_keys: dict[str, nw.LazyFrame]) -> list[Parent]:
    """The loaded rows that the rows of table ``name`` must belong to."""
    table = TABLES[name]
    parents = []
    if table.person_level and name != "person":
        parents.append(
            Parent(
                "person_id",
                loaded_keys["person"],
                "unknown_person",
                "the person is not in the person table, or was quarantined there",
            )
        )
    if table.parent is not None:
        parent_table, column = table.parent  # present: discover() refuses a child without its parent
        parents.append(
            Parent(
                column,
                loaded_keys[parent_table],
                f"orphan_{column.removesuffix('_id')}",
                f"{column} has no loaded {parent_table} row (absent, or quarantined there)",
            )
        )
    return parents


def _record(eng: Engine, log: RunLog, result: IngestResult, outcome: Outcome, quarantine: nw.LazyFrame) -> None:
    if not outcome.balanced:
        raise AssertionError(f"reconciliation failed for {outcome.table}: {outcome}")
    result.outcomes.append(outcome)
    for metric in ("input_rows", "loaded", "quarantined", "opted_out"):
        log.add("reconcile", outcome.table, metric, getattr(outcome, metric))
    for source, rows in outcome.removed:
        log.add("reconcile", outcome.table, source, rows)
    eng.append("quarantine", quarantine)
