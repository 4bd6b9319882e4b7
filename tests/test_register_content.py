"""Every shipped condition, medicine and procedure list finds its people, in every code system it carries.

One crafted person per (definition, system), coded with a code of that list; one per definition with a
resolved list, resolved after diagnosis; and, for definitions with a lookback, one coded a day inside the
window and one a day outside it. One ingest and one run cover them all.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from openphm.codes import Definition, load_definitions
from openphm.ingest import ingest
from openphm.ingest.pseudonymise import KeyedHash
from openphm.pipeline import run
from openphm.registers.register import REGISTER_KINDS
from openphm.stages import by_name
from tests.support.sources import EXTRACT, KEY, person, read_table, store_path

Rows = dict[str, list[dict[str, object]]]
AS_OF = date(2023, 3, 31)
DEFINITIONS = {k: d for k, d in load_definitions().items() if d.kind in REGISTER_KINDS}
pytestmark = pytest.mark.skipif(not DEFINITIONS, reason="no definitions shipped")


def nhs_numbers(count: int) -> list[str]:
    out, stem = [], 999_100_000
    while len(out) < count:
        digits = [int(d) for d in str(stem)]
        check = (11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11) % 11
        if check != 10:
            out.append(f"{stem}{check}")
        stem += 1
    return out


def _code(definition: Definition, system: str, resolved: bool = False) -> str:
    lists = definition.resolved if resolved else definition.codelists
    return sorted(lists[system].codes)[0]


class Crafted:
    """Source rows for crafted people, and who is expected where."""

    def __init__(self) -> None:
        self.numbers = iter(nhs_numbers(5000))
        self.tables: Rows = {
            k: [] for k in ("person", "gp_event", "gp_medication", "apc_episode", "apc_diagnosis", "apc_procedure")
        }
        self.expect: list[tuple[str, str, bool, str]] = []  # (nhs, definition, active, why)
        self.episodes = 0
        self.people: set[str] = set()

    def coded(
        self, definition: Definition, system: str, when: date, nhs: str | None = None, resolved: bool = False
    ) -> str:
        nhs = nhs or next(self.numbers)
        if nhs not in self.people:
            self.people.add(nhs)
            self.tables["person"].append(person(nhs, date_of_birth="1950-01-01"))
        code, day = _code(definition, system, resolved), when.isoformat()
        if system == "snomed":
            self.tables["gp_event"].append({"nhs_number": nhs, "event_date": day, "snomed_code": code})
        elif system in ("dmd", "bnf"):
            dmd, bnf = (code, None) if system == "dmd" else ("10000000000", code)
            self.tables["gp_medication"].append(
                {"nhs_number": nhs, "issue_date": day, "dmd_code": dmd, "bnf_code": bnf}
            )
        else:
            self.episodes += 1
            episode = f"E{self.episodes}"
            self.tables["apc_episode"].append(
                {
                    "nhs_number": nhs,
                    "episode_id": episode,
                    "admission_date": day,
                    "discharge_date": day,
                    "admission_method": "21",
                }
            )
            table, column = ("apc_diagnosis", "icd10_code") if system == "icd10" else ("apc_procedure", "opcs4_code")
            self.tables[table].append({"episode_id": episode, "position": 1, column: code})
        return nhs


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Crafted, pl.DataFrame]:
    from tests.support.sources import write_source

    c = Crafted()
    for d in DEFINITIONS.values():
        for system in d.codelists:
            nhs = c.coded(d, system, AS_OF - timedelta(days=30))
            c.expect.append((nhs, d.id, True, f"one {system} code"))
        for system in d.resolved:
            nhs = c.coded(d, system, AS_OF - timedelta(days=60))
            c.coded(d, system, AS_OF - timedelta(days=30), nhs=nhs, resolved=True)
            c.expect.append((nhs, d.id, False, f"{system} resolved after diagnosis"))
        if d.lookback_days:
            system = next(iter(d.codelists))
            inside = c.coded(d, system, AS_OF - timedelta(days=d.lookback_days))
            outside = c.coded(d, system, AS_OF - timedelta(days=d.lookback_days + 1))
            c.expect += [(inside, d.id, True, "first day of the lookback"), (outside, d.id, False, "a day before it")]
    tmp = tmp_path_factory.mktemp("content")
    folder = write_source(tmp / "source", {k: v for k, v in c.tables.items() if v})
    store = store_path(tmp, "duckdb")
    ingest(folder, store, key=KEY, extract_date=EXTRACT)
    stages = [s for name, s in by_name().items() if name in ("population", "register")]
    run(store, as_of=(AS_OF,), stages=stages)
    return c, read_table(store, "register")


def test_every_definition_finds_its_people(crafted: tuple[Crafted, pl.DataFrame]) -> None:
    c, register = crafted
    numbers = [nhs for nhs, *_ in c.expect]
    pseudonyms = dict(zip(numbers, KeyedHash(KEY)(numbers), strict=True))
    rows = {(r["person_id"], r["definition"]): r["active"] for r in register.iter_rows(named=True)}
    problems = []
    for nhs, definition, active, why in c.expect:
        got = rows.get((pseudonyms[nhs], definition))
        if got is not active:
            problems.append(f"{definition}: {why}: expected active={active}, got {got}")
    assert not problems, "\n".join(problems)
    assert len(c.expect) >= len(DEFINITIONS)
