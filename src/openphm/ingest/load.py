"""Ingest: a source folder in the input contract becomes a new, pseudonymised store.

Order of work: check every file's header (a bad file stops the run before anything is written) ->
build the pseudonym map -> apply the opt-out (purpose ``planning``) -> validate and quarantine each table,
parents before children -> write the canonical tables, ``quarantine`` and ``run_log`` -> publish the store
atomically.
"""

from __future__ import annotations

import gzip
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
from openphm.ingest.pseudonymise import KeyedHash, normalise_nhs_number
from openphm.ingest.rules import nhs_number_valid
from openphm.ingest.tables import Outcome, Parent, identify, mark_opted_out, split
from openphm.pipeline.runlog import RunLog

PURPOSES = ("planning", "direct-care")
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
) -> IngestResult:
    """Validate, pseudonymise and load ``source`` into a new store at ``store``.

    The previous store at ``store`` is replaced only when the whole ingest has succeeded.
    """
    if purpose not in PURPOSES:
        raise InputError(f"--purpose must be one of {', '.join(PURPOSES)}")
    sources, ignored = discover(source)
    extract_date = extract_date or source_extract_date(source) or date.today()
    log = RunLog("ingest", purpose, engine)
    log.add("ingest", "extract_date", "extract_date", detail=extract_date.isoformat())
    for name in ignored:
        log.add("ingest", name, "ignored_file")
    result = IngestResult(store, log.run_id, purpose, extract_date, ignored_files=ignored)
    step = progress or (lambda _message: None)

    with building(store, engine, start_from_existing=False) as eng:
        _load_all(eng, sources, key, purpose, extract_date, log, result, step)
        log.write(eng)
    return result


def _read_all(eng: Engine, sources: dict[str, SourceFile]) -> tuple[dict[str, nw.LazyFrame], dict[str, int]]:
    """Read every file once through, so a malformed file stops the run here, named, before any work."""
    raw: dict[str, nw.LazyFrame] = {}
    rows: dict[str, int] = {}
    for name, src in sources.items():
        try:
            raw[name] = read(eng, src)
            rows[name] = count(raw[name])
        except Exception as exc:  # each engine has its own parse errors; none may reach the user raw
            raise InputError(
                f"{src.path}: cannot be read as {src.format.upper()} ({type(exc).__name__}: check the "
                "encoding is UTF-8 and every row has the header's number of fields)"
            ) from None
    return raw, rows


def _load_all(
    eng: Engine,
    sources: dict[str, SourceFile],
    key: bytes,
    purpose: str,
    extract_date: date,
    log: RunLog,
    result: IngestResult,
    step: Progress,
) -> None:
    raw, input_rows = _read_all(eng, sources)
    step("pseudonymising")
    pseudonyms = _pseudonym_map(eng, raw, sources, key)
    identified = {}
    checks = {}
    for name, src in sources.items():
        if src.id_column:
            identified[name], checks[name] = identify(raw[name], src, pseudonyms)
        else:
            identified[name], checks[name] = raw[name], []

    opted_people = None
    if "opt_out" in sources:
        step("opt_out")
        listed, quarantine, _ = split(
            eng, TABLES["opt_out"], identified["opt_out"], checks["opt_out"], [], extract_date
        )
        listed = eng.persist(listed)
        quarantine = eng.persist(quarantine)
        _record(
            eng,
            log,
            result,
            Outcome("opt_out", input_rows["opt_out"], count(listed), count(quarantine.select("row").pipe(distinct)), 0),
            quarantine,
        )
        if purpose == "planning":
            opted_people = eng.persist(listed.pipe(distinct))
        else:
            log.add("opt_out", "opt_out", "not_applied", detail=f"purpose {purpose}: the opt-out does not apply")

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
        if opted_people is not None and table.person_level:
            frame = mark_opted_out(frame, opted_people, "person_id")
            if name == "apc_episode":
                opted_episodes = eng.persist(
                    frame.filter(~nw.col("_opted_out").is_null()).select("episode_id").pipe(distinct)
                )
                held = eng.checkpoint()  # read by the episode's child tables
        elif opted_episodes is not None and table.parent == ("apc_episode", "episode_id"):
            frame = mark_opted_out(frame, opted_episodes, "episode_id")
        parents = _parents(name, loaded_keys)
        loaded, quarantine, opted_out = split(eng, table, frame, checks[name], parents, extract_date)
        if name == "person":
            loaded = _person(loaded, eng.table("lsoa"), eng.table("practice") if "practice" in sources else None)
        eng.write(name, loaded)
        loaded = eng.table(name)
        if name in _KEYS:
            loaded_keys[name] = loaded.select(_KEYS[name])
        quarantine = eng.persist(quarantine)
        rows_quarantined = count(quarantine.select("row").pipe(distinct))
        _record(
            eng, log, result, Outcome(name, input_rows[name], count(loaded), rows_quarantined, opted_out), quarantine
        )
        eng.release(held)  # this table's intermediate results: written, no longer needed


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
    eng.append("quarantine", quarantine)
