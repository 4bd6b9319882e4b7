"""``generate``: a synthetic England, written chunk by chunk as a source folder of the input contract.

People are generated in chunks of 100,000, each with its own NumPy generator derived from the seed and
the chunk's number, so the same seed gives byte-identical files and memory stays flat however many
people are asked for. The models' levels (condition intercepts, activity rates) are calibrated once per
process on a fixed calibration population, independent of the seed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from openphm.content import content_path
from openphm.content.validation import parse_yaml
from openphm.contract.reader import EXTRACT_DATE_FILE
from openphm.contract.schema import TABLES
from openphm.errors import OpenPHMError
from openphm.synth import conditions, geography, hospital, primary_care, risk
from openphm.synth.errors import plant
from openphm.synth.people import Window, nhs_numbers, people
from openphm.synth.timeline import exposure, yearly_events
from openphm.synth.writer import TableWriter, as_text, to_arrow

CHUNK = 100_000
CALIBRATION_PEOPLE = 60_000
CALIBRATION_SEED = 20261124
FORMATS = ("parquet", "csv")
RESERVE = 1_000
"""Valid test-range NHS numbers kept back for planted rows (people who are not in the person table)."""
NHS_CAPACITY = 908_000
"""People who can have an NHS number of the testing range: it has a million nine-digit stems, of which
about 10 in 11 give a valid check digit (909,091), less the reserve."""
TABLE_ORDER = tuple(name for name in TABLES if name not in ("lsoa", "practice", "opt_out_cleared"))
"""The contract's person-level tables, in its order (practice.csv is written apart; lsoa is shipped; the
national check's cleared list is a deployment's own, so synthetic England supplies none)."""


class SynthError(OpenPHMError):
    """The synthetic population cannot be generated as asked (a bad option or output folder)."""


@dataclass
class SynthResult:
    """What ``generate`` wrote."""

    out: Path
    rows: dict[str, int]
    seconds: float
    extract_date: date
    """The last day of the data window: pass it to ingest as ``extract_date``."""
    id_column: str
    """``nhs_number`` (test range) or, beyond the range's capacity, ``person_id``."""
    planted: dict[str, Counter] = field(default_factory=dict)
    """Planted contract violations per table and reason."""


@lru_cache(maxsize=1)
def parameters() -> dict:
    """The shipped model parameters (``content/synth/parameters.yaml``)."""
    return parse_yaml(content_path("synth", "parameters.yaml").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Calibration:
    intercepts: dict[str, float]
    levels: dict[str, float]


def _day(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def window_of(start: date, years: int) -> Window:
    """``years`` years from ``start``; the last day is the day before the same date ``years`` later."""
    try:
        end = start.replace(year=start.year + years)
    except ValueError:  # 29 February in a year that has none
        end = date(start.year + years, 3, 1)
    return Window(_day(start), _day(end) - 1, years)


@lru_cache(maxsize=4)
def calibration(start: date, years: int) -> Calibration:
    """Condition intercepts and activity levels, fitted on a fixed population spread over all of England."""
    params = parameters()
    window = window_of(start, years)
    rng = np.random.default_rng(np.random.SeedSequence(CALIBRATION_SEED))
    spread_out = geography.practices(CALIBRATION_PEOPLE, rng, {**params["practices"], "mean_list_size": 100})
    p = people(np.arange(CALIBRATION_PEOPLE), spread_out, window, rng, params["population"], params["latent"])
    intercepts = conditions.calibrate(params["conditions"], p, window, rng)
    h = conditions.health(p, window, rng, params, intercepts)
    exp = exposure(p, window)
    relative = risk.relative_rates(p, h, risk.state(p, h, window), rng, params["activity"]["models"])
    return Calibration(intercepts, risk.levels(relative, exp, rng, params["activity"]))


def _empty(name: str) -> dict[str, np.ndarray]:
    kinds = {"date": np.int64, "float": np.float64, "int": np.float64, "bool": bool, "str": object}
    frame = {c.name: np.array([], dtype=kinds[c.type]) for c in TABLES[name].columns if c.name != "person_id"}
    return {"_person": np.array([], dtype=np.int64), **frame}


def simulate(
    index: np.ndarray,
    practices: geography.Practices,
    window: Window,
    rng: np.random.Generator,
    params: dict,
    calibrated: Calibration,
    chunk: int,
) -> dict[str, dict[str, np.ndarray]]:
    """Every table of one chunk of people, as frames (``_person`` = the person's number in the chunk)."""
    activity = params["activity"]
    missing = activity["cost_missing"]
    p = people(index, practices, window, rng, params["population"], params["latent"])
    h = conditions.health(p, window, rng, params, calibrated.intercepts)
    exp = exposure(p, window)
    relative = risk.relative_rates(p, h, risk.state(p, h, window), rng, activity["models"])
    rate = risk.calibrated(relative, calibrated.levels, activity["models"])

    visit_person, _, visit_day = yearly_events(rng, rate["gp"], exp)
    gp_event, deliveries = primary_care.gp_events(p, h, exp, window, rng, params, (visit_person, visit_day))
    emergency = risk.emergency_counts(rng, rate["emergency"], exp, activity["models"]["emergency"]["prior"])
    episode, diagnosis, procedure, via_ae = hospital.admissions(
        p, h, exp, window, rng, emergency, rate["elective"], deliveries, chunk, missing
    )
    ls = geography.lsoas()
    sex = np.where(p.female, "F", "M").astype(object)
    sex[rng.random(p.size) < 0.0002] = "U"
    ethnicity = p.ethnicity.astype(object)
    ethnicity[(ethnicity == "Z") & (rng.random(p.size) < 0.5)] = None
    opted = rng.random(p.size) < params["population"]["opt_out"]
    frames = {
        "person": {
            "_person": np.arange(p.size),
            "date_of_birth": p.birth,
            "sex": sex,
            "ethnicity": ethnicity,
            "lsoa_code": ls.code[p.lsoa].astype(object),
            "practice_code": np.asarray(practices.table["practice_code"].to_numpy(zero_copy_only=False))[p.practice],
            "registration_start": p.registered,
            "registration_end": p.deregistered,
            "date_of_death": p.death,
            "acg_png": np.full(p.size, np.nan),
        },
        "opt_out": {"_person": np.flatnonzero(opted)},
        "gp_event": _sorted(gp_event, "event_date"),
        "gp_medication": _sorted(primary_care.gp_medication(p, h, exp, rng, params["medicines"]), "issue_date"),
        "apc_episode": episode,
        "apc_diagnosis": diagnosis,
        "apc_procedure": procedure,
        "ae_attendance": hospital.ae_attendances(p, exp, rng, rate["ae"], via_ae, chunk, missing),
        "op_appointment": hospital.outpatients(
            p, h, exp, rng, rate["outpatient"], activity["outpatient_did_not_attend"], chunk, missing
        ),
        "community_contact": hospital.contacts(exp, rng, rate["community"], hospital.COMMUNITY, 75.0, missing),
        "mh_contact": hospital.contacts(exp, rng, rate["mental_health"], hospital.MENTAL_HEALTH, 190.0, missing),
        "social_care_service": hospital.social_care(p, h, exp, window, rng, activity["social_care_65_plus"], missing),
        "waiting_list": hospital.waiting_lists(p, h, exp, window, rng, rate["waiting_list"]),
    }
    frames["_opted"] = {"_person": opted}
    return {name: frame if frame else _empty(name) for name, frame in frames.items()}


def _sorted(frame: dict[str, np.ndarray], date_column: str) -> dict[str, np.ndarray]:
    if not frame:
        return frame
    # One composite key sorts about four times faster than a two-key lexsort.
    key = frame["_person"].astype(np.int64) * 1_000_000 + (frame[date_column].astype(np.int64) + 200_000)
    order = np.argsort(key, kind="stable")
    return {k: v[order] for k, v in frame.items()}


def _identifiers(index: np.ndarray, numbers: np.ndarray | None) -> pa.Array:
    if numbers is not None:
        return pc.cast(pa.array(numbers[index]), pa.string())
    text = pc.utf8_lpad(pc.cast(pa.array(index + 1), pa.string()), 9, "0")
    return pc.binary_join_element_wise("SYNP", text, "")


def _check(people_count: int, years: int, fmt: str, error_rate: float, out: Path) -> None:
    if people_count < 1 or people_count > 100_000_000:
        raise SynthError("--people must be between 1 and 100,000,000")
    if years < 1 or years > 20:
        raise SynthError("--years must be between 1 and 20")
    if fmt not in FORMATS:
        raise SynthError(f"--format must be one of {', '.join(FORMATS)}")
    if not 0 <= error_rate <= 0.5:
        raise SynthError("--error-rate must be between 0 and 0.5")
    if out.exists() and not out.is_dir():
        raise SynthError(f"{out}: exists and is not a folder")


def generate(
    out: Path,
    *,
    people: int,
    seed: int = 1,
    start: date = date(2021, 4, 1),
    years: int = 4,
    fmt: str = "parquet",
    error_rate: float = 0.005,
    progress: Callable[[str], None] | None = None,
    id_column: str | None = None,
) -> SynthResult:
    """Write a synthetic source folder to ``out``: every contract table, ``practice.csv``, planted errors.

    ``id_column`` defaults to ``nhs_number`` while the testing range has enough numbers, else ``person_id``.
    """
    began = time.perf_counter()
    out = Path(out)
    _check(people, years, fmt, error_rate, out)
    step = progress or (lambda _message: None)
    params = parameters()
    window = window_of(start, years)
    extract = start + timedelta(days=window.last - window.start)
    id_column = id_column or ("nhs_number" if people <= NHS_CAPACITY else "person_id")
    if id_column == "nhs_number" and people > NHS_CAPACITY:
        raise SynthError(f"nhs_number identifiers are available for at most {NHS_CAPACITY:,} people")
    step("calibrating the models")
    calibrated = calibration(start, years)
    world = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    practices = geography.practices(people, world, params["practices"])
    valid = nhs_numbers(world)
    spare = [str(n) for n in valid[-RESERVE:]]
    numbers = valid[:people] if id_column == "nhs_number" else None
    strangers = spare if id_column == "nhs_number" else [f"SYNX{i:08d}" for i in range(RESERVE)]

    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("*.parquet"), *out.glob("*.csv")]:
        if old.stem in (*TABLE_ORDER, "practice"):  # an earlier run's files, possibly in the other format
            old.unlink()
    pacsv.write_csv(practices.table, out / "practice.csv")
    (out / EXTRACT_DATE_FILE).write_text(extract.isoformat() + "\n", encoding="utf-8")
    writer = TableWriter(out, fmt)
    planted: dict[str, Counter] = {}

    def write(number: int, index: np.ndarray, frames: dict[str, dict[str, np.ndarray]]) -> None:
        """Convert, plant errors in and write one chunk (in a thread, while the next chunk is simulated)."""
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2, number)))
        opted = frames.pop("_opted")["_person"]
        ids = _identifiers(index, numbers)
        for name in TABLE_ORDER:
            frame = frames[name]
            table = to_arrow(name, frame, ids, id_column)
            if error_rate > 0:
                table, counts = plant(
                    name,
                    as_text(table),
                    ~opted[frame["_person"]] if name != "opt_out" else np.ones(table.num_rows, bool),
                    error_rate,
                    rng,
                    id_column=id_column,
                    strangers=strangers,
                    valid_nhs=spare,
                    extract=extract,
                )
                planted.setdefault(name, Counter()).update(counts)
            writer.write(name, table)

    pending: Future | None = None
    try:
        with ThreadPoolExecutor(max_workers=1) as background:
            for number, first in enumerate(range(0, people, CHUNK)):
                step(f"people {first + 1:,}-{min(first + CHUNK, people):,} of {people:,}")
                index = np.arange(first, min(first + CHUNK, people))
                rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, number)))
                frames = simulate(index, practices, window, rng, params, calibrated, number)
                if pending is not None:
                    pending.result()
                pending = background.submit(write, number, index, frames)
            if pending is not None:
                pending.result()
    finally:
        writer.close()
    rows = {"practice": practices.table.num_rows, **writer.rows}
    return SynthResult(out, rows, time.perf_counter() - began, extract, id_column, planted)


__all__ = ["SynthError", "SynthResult", "generate", "parameters"]
