"""Ingest throughput: rows per second and peak memory of ``phm ingest`` on generated input.

    python benchmarks/ingest_throughput.py --people 100000 --engines duckdb,polars

The input is volume, not realism: NHS numbers from the testing range, and per person about 20 GP events,
6 medication issues, 2 outpatient appointments, 0.5 A&E attendances and 0.4 admissions with 3 diagnoses.
Each ingest runs in a child process so that its peak memory (max RSS) is measured on its own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl


def nhs_numbers(count: int) -> np.ndarray:
    """``count`` Modulus 11 valid numbers from 999 000 0000 upwards (vectorised)."""
    stems = np.arange(999_000_000, 999_000_000 + int(count * 1.15) + 100, dtype=np.int64)
    digits = (stems[:, None] // 10 ** np.arange(8, -1, -1)) % 10
    check = (11 - (digits * np.arange(10, 1, -1)).sum(axis=1) % 11) % 11
    keep = check != 10
    return (stems[keep] * 10 + check[keep])[:count].astype(str)


def generate(folder: Path, people: int, seed: int = 1) -> int:
    """Write a source folder; return the number of input rows."""
    rng = np.random.default_rng(seed)
    ids = nhs_numbers(people)
    start = np.datetime64("2021-04-01")
    days = 4 * 365

    def dates(n: int) -> np.ndarray:
        return (start + rng.integers(0, days, n)).astype(str)

    def pick(n: int) -> np.ndarray:
        return ids[rng.integers(0, people, n)]

    lsoa = pl.read_csv(
        Path(__file__).resolve().parents[1] / "src/openphm/content/reference/lsoa_imd2019.csv.gz", columns=["lsoa_code"]
    )["lsoa_code"].to_numpy()
    births = (np.datetime64("1925-01-01") + rng.integers(0, 99 * 365, people)).astype(str)
    tables = {
        "person": pl.DataFrame(
            {
                "nhs_number": ids,
                "date_of_birth": births,
                "sex": rng.choice(["F", "M"], people),
                "ethnicity": rng.choice(list("ABCHJKMNRZ"), people),
                "lsoa_code": lsoa[rng.integers(0, len(lsoa), people)],
                "practice_code": rng.choice([f"Y9{i:04d}" for i in range(50)], people),
            }
        ),
    }
    n = people * 20
    tables["gp_event"] = pl.DataFrame(
        {
            "nhs_number": pick(n),
            "event_date": dates(n),
            "snomed_code": rng.choice(["38341003", "44054006", "60621009", "271649006"], n),
            "value": np.round(rng.normal(100, 30, n), 1),
        }
    )
    n = people * 6
    tables["gp_medication"] = pl.DataFrame(
        {"nhs_number": pick(n), "issue_date": dates(n), "dmd_code": rng.choice(["320000009", "318420003"], n)}
    )
    n = people * 2
    tables["op_appointment"] = pl.DataFrame(
        {
            "nhs_number": pick(n),
            "appointment_id": np.char.add("O", np.arange(n).astype(str)),
            "appointment_date": dates(n),
            "attended": rng.choice(["true", "false"], n),
            "cost": 160.0,
        }
    )
    n = people // 2
    tables["ae_attendance"] = pl.DataFrame(
        {
            "nhs_number": pick(n),
            "attendance_id": np.char.add("A", np.arange(n).astype(str)),
            "arrival_date": dates(n),
            "acuity": rng.integers(1, 6, n),
            "cost": 250.0,
        }
    )
    n = people * 2 // 5
    admitted = start + rng.integers(0, days, n)
    episode = np.char.add("E", np.arange(n).astype(str))
    tables["apc_episode"] = pl.DataFrame(
        {
            "nhs_number": pick(n),
            "episode_id": episode,
            "admission_date": admitted.astype(str),
            "discharge_date": (admitted + rng.integers(0, 10, n)).astype(str),
            "admission_method": rng.choice(["11", "21", "22"], n),
            "cost": 3000.0,
        }
    )
    tables["apc_diagnosis"] = pl.DataFrame(
        {
            "episode_id": np.repeat(episode, 3),
            "position": np.tile([1, 2, 3], n),
            "icd10_code": rng.choice(["I500", "J440", "E119", "N390"], 3 * n),
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.write_csv(folder / f"{name}.csv")
    return sum(frame.height for frame in tables.values())


def bare_read_seconds(folder: Path) -> float:
    """The floor: DuckDB reading every file once, all columns as text."""
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    for path in sorted(folder.glob("*.csv")):
        con.execute(f"SELECT count(*) FROM read_csv('{path}', all_varchar = true)").fetchall()
    return time.perf_counter() - started


_CHILD = """
import resource, runpy, sys
sys.argv = ["phm", *sys.argv[1:]]
try:
    runpy.run_module("openphm", run_name="__main__")
finally:
    print("peak_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def ingest_once(folder: Path, engine: str, work: Path) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of one ``phm ingest`` in its own process."""
    store = work / ("store.duckdb" if engine == "duckdb" else f"store-{engine}")
    env = dict(os.environ, OPENPHM_KEY="benchmark-key-not-secret-0123456789")
    args = ["ingest", str(folder), "--store", str(store), "--engine", engine, "--extract-date", "2025-06-30"]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, *args], check=True, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak_kb = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("peak_kb"))
    return seconds, peak_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[100_000])
    parser.add_argument("--engines", default="duckdb,polars")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    header = ("engine", "people", "input rows", "seconds", "rows/s", "peak MB", "x bare read")
    print(f"{header[0]:8} " + " ".join(f"{h:>11}" for h in header[1:]))
    for people in args.people:
        work = Path(tempfile.mkdtemp(prefix="openphm-bench-"))
        try:
            rows = generate(work / "source", people)
            floor = bare_read_seconds(work / "source")
            for engine in args.engines.split(","):
                seconds, peak = ingest_once(work / "source", engine, work)
                figures = (people, rows, f"{seconds:.1f}", round(rows / seconds), round(peak), f"{seconds / floor:.1f}")
                print(f"{engine:8} " + " ".join(f"{f:>11,}" if isinstance(f, int) else f"{f:>11}" for f in figures))
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
