"""Rows and a pipeline for the cohort tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path

import pyarrow as pa

from openphm.engine import building
from openphm.ingest import ingest
from openphm.ingest.pseudonymise import KeyedHash
from openphm.options import RunOptions
from openphm.pipeline import run
from openphm.stages import by_name
from tests.support.sources import EXTRACT, KEY, person, store_path

Rows = dict[str, list[dict[str, object]]]


AS_OF = (date(2024, 3, 31),)


STAGES = ("population", "register", "measures", "cohort")


SYSTOLIC, DIASTOLIC, HYPERTENSION, STATIN = "100151000000109", "100161000000107", "10725009", "10294811000001100"


def _nhs_numbers(count: int) -> list[str]:
    """Modulus 11 valid NHS numbers from the range reserved for testing."""
    out = []
    n = 1
    while len(out) < count:
        digits = f"999{n:06d}"
        check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(digits)) % 11
        if check != 10:
            out.append(digits + str(0 if check == 11 else check))
        n += 1
    return out


NAMES = [chr(ord("a") + i) for i in range(20)]


NHS = dict(zip(NAMES, _nhs_numbers(len(NAMES)), strict=True))


PSEUDONYM = dict(zip(NAMES, KeyedHash(KEY)(list(NHS.values())), strict=True))


WHO = {v: k for k, v in PSEUDONYM.items()}


def people(*names: str, **overrides: dict[str, object]) -> list[dict[str, object]]:
    """Person rows for ``names`` (default: born 1950, alive, registered); ``overrides`` by name."""
    return [person(NHS[n], **overrides.get(n, {})) for n in names]


def upstream(columns: Mapping[str, list[object]], as_of: date = AS_OF[0]) -> pa.Table:
    """A hand-made stage output keyed by (person_id, as_of): ``columns`` has a ``who`` column of names."""
    data = {k: v for k, v in columns.items() if k != "who"}
    who = list(columns["who"])
    return pa.table(
        {
            "person_id": pa.array([PSEUDONYM[w] for w in who], pa.string()),  # type: ignore[index]
            "as_of": pa.array([as_of] * len(who), pa.date32()),
            **{k: pa.array(v) for k, v in data.items()},
        }
    )


def pipeline(
    source: Callable[[Rows], Path],
    tmp_path: Path,
    tables: Rows,
    *,
    engine: str = "duckdb",
    extra: Mapping[str, pa.Table] | None = None,
    as_of: tuple[date, ...] = AS_OF,
    options: RunOptions | None = None,
) -> Path:
    """Ingest ``tables``, write the hand-made ``extra`` tables, run the stages cohorts need; the store."""
    store = store_path(tmp_path, engine)
    ingest(source(tables), store, key=KEY, engine=engine, extract_date=EXTRACT)
    if extra:
        with building(store, engine, start_from_existing=True) as eng:
            for name, table in extra.items():
                eng.write(name, eng.frame(table))
    stages = [s for name, s in by_name().items() if name in STAGES]
    run(store, engine=engine, as_of=as_of, stages=stages, options=options)
    return store


def _episode(who: str, episode: str, admitted: str, method: str = "21") -> dict[str, object]:
    return {
        "nhs_number": NHS[who],
        "episode_id": episode,
        "admission_date": admitted,
        "discharge_date": admitted,
        "admission_method": method,
    }


ACSC_EPISODES = [  # (who, episode, admitted, method, [(position, icd10)], [opcs4])
    ("a", "A1", "2023-10-01", "21", [(1, "J45.9")], []),  # asthma: in
    ("b", "B1", "2023-10-01", "11", [(1, "J45.9")], []),  # elective: out
    ("c", "C1", "2023-10-01", "21", [(1, "S72.0"), (2, "J45.9")], []),  # asthma not primary: out
    ("d", "D1", "2023-10-01", "22", [(1, "J20.9"), (2, "J44.9")], []),  # acute bronchitis with COPD: in
    ("e", "E1", "2023-10-01", "21", [(1, "J20.9")], []),  # acute bronchitis alone: out
    ("f", "F1", "2023-10-01", "21", [(1, "I50.0")], ["K40.1"]),  # heart failure, coronary bypass: out
    ("g", "G1", "2023-10-01", "21", [(1, "I50.0")], ["X40.3"]),  # heart failure, dialysis (not cardiac): in
    ("h", "H1", "2023-10-01", "21", [(1, "J18.1"), (2, "D57.1")], []),  # pneumonia with sickle cell: out
    ("i", "I1", "2023-10-01", "21", [(1, "S72.0"), (3, "E11.6")], []),  # diabetes complication, any position: in
    ("j", "J1", "2023-10-01", "28", [(1, "I20.0")], ["U20.1"]),  # angina with imaging only: in
    ("k", "K1", "2023-10-01", "21", [(1, "I20.0")], ["K63.1"]),  # angina with angiography: out
    ("l", "L1", "2023-04-01", "21", [(1, "J45.9")], []),  # 365 days before as_of (2024 is leap): outside
    ("m", "M1", "2023-04-02", "21", [(1, "J45.9")], []),  # 364 days before: inside
    ("n", "N1", "2023-10-01", "21", [(1, "L03.1")], ["S47.1"]),  # cellulitis, incision of skin: in
    ("o", "O1", "2023-10-01", "21", [(1, "L03.1")], ["T31.1"]),  # cellulitis with an operation: out
    ("p", "P1", "2023-10-01", "21", [(1, "K02.1")], []),  # dental caries: in
    ("q", "Q1", "2023-05-01", "21", [(1, "J45.0")], []),  # two ACSC admissions: in, both conditions named
    ("q", "Q2", "2023-12-01", "21", [(1, "I10X")], []),
]


def acsc_tables() -> Rows:
    return {
        "person": people(*sorted({e[0] for e in ACSC_EPISODES})),
        "apc_episode": [_episode(w, e, d, m) for w, e, d, m, _, _ in ACSC_EPISODES],
        "apc_diagnosis": [
            {"episode_id": e, "position": p, "icd10_code": c} for _, e, _, _, dx, _ in ACSC_EPISODES for p, c in dx
        ],
        "apc_procedure": [
            {"episode_id": e, "position": i, "opcs4_code": c}
            for _, e, _, _, _, px in ACSC_EPISODES
            for i, c in enumerate(px, start=1)
        ],
    }


def _reading(who: str, when: str, code: str, value: float) -> dict[str, object]:
    return {"nhs_number": NHS[who], "event_date": when, "snomed_code": code, "value": value, "unit": "mmHg"}


def bp_events() -> list[dict[str, object]]:
    earlier, later = "2023-01-10", "2023-06-10"
    return [
        _reading("a", earlier, SYSTOLIC, 140),
        _reading("a", later, SYSTOLIC, 145),  # in: systolic twice
        _reading("b", earlier, SYSTOLIC, 139),
        _reading("b", later, SYSTOLIC, 150),  # out: the previous reading is under 140
        _reading("c", earlier, DIASTOLIC, 90),
        _reading("c", later, DIASTOLIC, 90),  # in: diastolic twice
        _reading("d", earlier, DIASTOLIC, 89),
        _reading("d", later, DIASTOLIC, 95),  # out
        _reading("e", earlier, SYSTOLIC, 150),
        _reading("e", later, SYSTOLIC, 150),
        {"nhs_number": NHS["e"], "event_date": "2020-01-01", "snomed_code": HYPERTENSION, "value": None, "unit": None},
        _reading("f", earlier, SYSTOLIC, 150),
        _reading("f", later, SYSTOLIC, 120),  # out: the latest reading is normal
    ]
