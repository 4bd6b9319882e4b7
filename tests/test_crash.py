"""Crash consistency: `phm ingest`, `phm run` and `phm export` killed with SIGKILL at random moments.

After each kill the store is byte-identical to before, or is the complete new store (every table, with the
row counts of an uninterrupted command); the next command cleans what the killed one left and succeeds. A
few trials run in the normal suite; `pytest -m crash` runs 50 of each (seeded). Also: a full disk ends in one
line and an unchanged store; a reader that holds a store open while a command publishes keeps its view.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from openphm.engine import count, open_store
from openphm.ingest import ingest
from tests.support.sources import EXTRACT, KEY, fingerprint, person, store_path, write_source

SRC = Path(__file__).resolve().parents[1] / "src"
SEED = 20261205
CI_TRIALS = 1
FULL_TRIALS = 50
OUTCOMES: Counter[tuple[str, str, str]] = Counter()
"""(engine, command, outcome) over the session's trials, printed at the end (pytest -s)."""


def _numbers(n: int) -> list[str]:
    out = []
    serial = 1
    while len(out) < n:
        body = f"999{serial:06d}"
        check = 11 - sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11
        if check != 10:
            out.append(body + str(0 if check == 11 else check))
        serial += 1
    return out


def _rows(people: int) -> dict[str, list[dict[str, object]]]:
    numbers = _numbers(people)
    return {
        "person": [person(n, date_of_birth=f"{1930 + i % 70}-0{1 + i % 9}-01") for i, n in enumerate(numbers)],
        "gp_event": [
            {"nhs_number": n, "event_date": "2024-01-10", "snomed_code": "38341003", "value": None, "unit": None}
            for n in numbers[::2]
        ],
    }


def _phm(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OPENPHM_KEY": KEY.decode()}
    return subprocess.Popen(
        [sys.executable, "-m", "openphm", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _finish(*args: str) -> float:
    """Run a command to the end; its wall time."""
    started = time.perf_counter()
    process = _phm(*args)
    _, err = process.communicate()
    assert process.returncode == 0, err.decode()[-2000:]
    return time.perf_counter() - started


def _counts(store: Path, engine: str) -> dict[str, int]:
    eng = open_store(store, engine)
    try:
        return {t: count(eng.table(t)) for t in eng.tables() if t != "run_log"}
    finally:
        eng.close()


def _leftovers(folder: Path) -> list[str]:
    marks = (".building-", ".reading-", ".replaced-", ".exporting-")
    return sorted(p.name for p in folder.rglob("*") if any(m in p.name for m in marks))


def _copy(store: Path, to: Path) -> Path:
    if to.exists():
        shutil.rmtree(to) if to.is_dir() else to.unlink()
    shutil.copytree(store, to) if store.is_dir() else shutil.copy2(store, to)
    return to


class Scenario:
    """One engine's stores before each command, the commands, and what an uninterrupted command leaves."""

    def __init__(self, folder: Path, engine: str) -> None:
        self.folder, self.engine = folder, engine
        self.old_source = write_source(folder / "old", _rows(20))
        self.new_source = write_source(folder / "new", _rows(30))
        self.ingested = store_path(folder, engine, "ingested")
        ingest(self.old_source, self.ingested, key=KEY, engine=engine, extract_date=EXTRACT)
        self.seconds: dict[str, float] = {}
        self.expected: dict[str, dict[str, int]] = {}
        # Uninterrupted references, run as the trials are (a subprocess), for their wall time and tables.
        work = self.work("reference")
        self.seconds["ingest"] = _finish(*self.command("ingest", work))
        self.expected["ingest"] = _counts(work, engine)
        work = _copy(self.ingested, work)
        self.seconds["run"] = _finish(*self.command("run", work))
        self.expected["run"] = _counts(work, engine)
        self.ran = _copy(work, store_path(folder, engine, "ran"))
        self.seconds["export"] = _finish(*self.command("export", work))

    def work(self, name: str) -> Path:
        (self.folder / name).mkdir(exist_ok=True)
        return _copy(self.ingested, store_path(self.folder / name, self.engine))

    def before(self, command: str, work: Path) -> Path:
        return _copy(self.ran if command == "export" else self.ingested, work)

    def command(self, command: str, store: Path) -> list[str]:
        common = ["--store", str(store), "--engine", self.engine]
        if command == "ingest":
            return ["ingest", str(self.new_source), *common, "--extract-date", EXTRACT.isoformat()]
        if command == "run":
            return ["run", *common, "--as-of", "2024-03-31"]
        return ["export", *common, "--out", str(store.parent / "out")]


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Scenario]:
    made: dict[str, Scenario] = {}

    def get(engine: str) -> Scenario:
        if engine not in made:
            made[engine] = Scenario(tmp_path_factory.mktemp(f"crash-{engine}"), engine)
        return made[engine]

    yield get
    if OUTCOMES:
        print("\nkill-harness outcomes:", json.dumps({" ".join(k): v for k, v in sorted(OUTCOMES.items())}))


def _trial(scenario: Scenario, command: str, rng: random.Random, index: int) -> str:
    """Kill one command at a random moment; check the store and the next command. Returns the outcome."""
    folder = scenario.folder / f"{command}-{index}"
    folder.mkdir()
    store = scenario.before(command, store_path(folder, scenario.engine))
    before = fingerprint(store)
    process = _phm(*scenario.command(command, store))
    try:
        process.wait(timeout=rng.uniform(0.0, scenario.seconds[command]))
        outcome = "finished before the kill"
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        outcome = "killed"
    if process.stderr:
        process.stderr.close()

    if command == "export":
        assert fingerprint(store) == before  # an export never changes the store
        log = store.parent / "out" / "export_log.json"
        state = "complete" if log.exists() else "absent or partial, no log"
        if log.exists():  # a log is written last: every file it lists is there, whole
            listed = json.loads(log.read_text())["rows"]
            assert all((store.parent / "out" / f"{name}.csv").exists() for name in listed)
    elif fingerprint(store) == before:
        state = "unchanged"
    else:
        assert _counts(store, scenario.engine) == scenario.expected[command]
        state = "complete new"
    left = bool(_leftovers(folder))

    _finish(*scenario.command(command, store))  # the next command succeeds...
    assert _leftovers(folder) == []  # ...and has cleaned what the killed one left
    if command != "export":
        assert _counts(store, scenario.engine) == scenario.expected[command]
    return f"{outcome}: {state}" + (", leftovers cleaned" if left else "")


def _run_trials(scenarios: Callable[[str], Scenario], engine: str, command: str, trials: int) -> None:
    scenario = scenarios(engine)
    rng = random.Random(f"{SEED}-{engine}-{command}")
    for index in range(trials):
        outcome = _trial(scenario, command, rng, index)
        OUTCOMES[(engine, command, outcome)] += 1
        print(f"\nkill trial {engine} {command} {index}: {outcome}", flush=True)


@pytest.mark.parametrize("command", ["ingest", "run", "export"])
def test_killed_command_leaves_old_or_complete_new_store(scenarios: Callable[[str], Scenario], command: str) -> None:
    _run_trials(scenarios, "duckdb", command, CI_TRIALS)


@pytest.mark.crash
@pytest.mark.parametrize("engine", ["duckdb", "polars"])
@pytest.mark.parametrize("command", ["ingest", "run", "export"])
def test_killed_command_fifty_times(
    scenarios: Callable[[str], Scenario], engine: str, command: str, request: pytest.FixtureRequest
) -> None:
    if "crash" not in str(request.config.getoption("-m")):
        pytest.skip("the full kill harness runs with -m crash (minutes per command)")
    _run_trials(scenarios, engine, command, int(os.environ.get("OPENPHM_CRASH_TRIALS", FULL_TRIALS)))


def _tmpfs(folder: Path, size: int) -> Path:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the full-disk test runs as root (CI container)")
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    return folder


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_full_disk_is_one_line_and_leaves_the_store_unchanged(tmp_path: Path, engine: str) -> None:
    old, new = write_source(tmp_path / "old", _rows(5)), write_source(tmp_path / "new", _rows(8))
    sizing = store_path(tmp_path, engine, "sizing")
    ingest(old, sizing, key=KEY, engine=engine, extract_date=EXTRACT)
    size = sum(p.stat().st_size for p in ([sizing] if sizing.is_file() else sizing.rglob("*")) if p.is_file())
    # Room for the first ingest (DuckDB holds a log about as large as the file until it checkpoints), but not
    # for a second, which needs the old store and a whole new copy.
    room = {"duckdb": 2.7, "polars": 1.5}[engine]
    disk = _tmpfs(tmp_path / "disk", (int(size * room) // 4096 + 1) * 4096)
    try:
        store = store_path(disk, engine)
        ingest(old, store, key=KEY, engine=engine, extract_date=EXTRACT)
        before = fingerprint(store)
        args = ["ingest", str(new), "--store", str(store), "--engine", engine, "--extract-date", "2025-06-30"]
        process = _phm(*args)
        _, err = process.communicate()
        lines = err.decode().strip().splitlines()
        assert process.returncode == 2 and len(lines) == 1, lines
        assert "no space left" in lines[0] and "unchanged" in lines[0]
        assert fingerprint(store) == before
        open_store(store, engine).close()  # the next start removes what the failed command left
        assert _leftovers(disk) == []
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_reader_keeps_its_view_while_a_command_publishes(tmp_path: Path, engine: str) -> None:
    store = store_path(tmp_path, engine)
    ingest(write_source(tmp_path / "old", _rows(20)), store, key=KEY, engine=engine, extract_date=EXTRACT)
    reader = open_store(store, engine)
    try:
        assert count(reader.table("person")) == 20
        ingest(write_source(tmp_path / "new", _rows(30)), store, key=KEY, engine=engine, extract_date=EXTRACT)
        # The open reader still sees one whole version: the old one, every table of it.
        assert count(reader.table("person")) == 20 and count(reader.table("gp_event")) == 10
    finally:
        reader.close()
    after = open_store(store, engine)
    try:
        assert count(after.table("person")) == 30 and count(after.table("gp_event")) == 15
    finally:
        after.close()
    assert _leftovers(tmp_path) == []
