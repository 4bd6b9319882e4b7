"""End-to-end benchmark: synthetic population -> ingest -> every stage -> report, per stage time and memory.

    python benchmarks/pipeline.py --people 100000 1000000 [--engine duckdb] [--format parquet] [--refresh]

For each size it generates a synthetic England (``phm synth``), then runs ``ingest``, ``run`` and ``report``,
each in its own process so that peak memory is that step's own. Inside ``run`` a sampler thread records the
peak resident memory (the process and its children, so Spark's JVM counts) while each stage runs. It prints
one table per size: wall seconds and peak MB per step and stage, rows written, and the total as a multiple of
a bare DuckDB read of the same input files - the floor no pipeline can beat - so that figures compare across
machines. With ``--refresh`` it then times ``phm run --refresh latest`` on the same store (the monthly
refresh, against the full run just measured). Nothing here is a pass/fail test: the targets live in
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from openphm.options import PEOPLE_PER_SLICE

KEY = "benchmark-key-not-secret-0123456789abcdef"

_CHILD = r"""
import json, sys, threading, time
from datetime import date
from pathlib import Path

import psutil

step, args = sys.argv[1], json.loads(sys.argv[2])
me = psutil.Process()
current = {"name": step}
peaks: dict[str, float] = {}
stop = threading.Event()


def rss() -> float:
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def sample() -> None:
    while not stop.is_set():
        name = current["name"]
        peaks[name] = max(peaks.get(name, 0.0), rss())
        time.sleep(0.05)


sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
started = time.perf_counter()
result: dict = {}
if step == "synth":
    from openphm.synth import generate

    done = generate(Path(args["out"]), people=args["people"], seed=1, fmt=args["format"], error_rate=0.005)
    result["rows"] = sum(done.rows.values())
    result["extract_date"] = done.extract_date.isoformat()
elif step == "ingest":
    from openphm import api

    done = api.ingest(
        Path(args["source"]), Path(args["store"]), key=args["key"].encode(), engine=args["engine"],
        extract_date=date.fromisoformat(args["extract"]),
    )
    result["rows"] = sum(o.input_rows for o in done.outcomes)
elif step == "run":
    from openphm import api

    def reached(name: str) -> None:  # on stderr, so a failed run still shows how far it got and when
        current.update(name=name)
        print(f"{time.perf_counter() - started:8.1f} s  {name}", file=sys.stderr, flush=True)

    done = api.run(
        Path(args["store"]),
        engine=args["engine"],
        progress=reached,
        people_per_slice=args["people_per_slice"],
        refresh=args.get("refresh"),
    )
    result["stages"] = {s.name: {"seconds": s.seconds, "rows": sum(s.rows.values())} for s in done.stages}
elif step == "report":
    from openphm.report import write_report

    write_report(Path(args["store"]), Path(args["out"]), engine=args["engine"])
    result["bytes"] = Path(args["out"]).stat().st_size
stop.set()
sampler.join()
result["seconds"] = time.perf_counter() - started
result["peaks"] = peaks
print("RESULT " + json.dumps(result))
"""


def child(step: str, **args: object) -> dict:
    """Run one step in a fresh process (its own peak memory); its messages pass straight to stderr."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, step, json.dumps(args)], stdout=subprocess.PIPE, text=True, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"{step} failed (its messages are above)")
    return json.loads(lines[-1][len("RESULT ") :])


def bare_read_seconds(folder: Path) -> float:
    """The floor: DuckDB reading every input file once (CSV as text, Parquet as stored).

    Parquet is streamed in batches that are dropped as they come, so every column is read and decoded while
    memory stays flat (holding the whole of a 10M-person gp_event in Arrow took more than 24 GB).
    """
    import duckdb

    con = duckdb.connect()
    started = time.perf_counter()
    for path in sorted(folder.iterdir()):
        if path.suffix == ".csv":
            con.execute(f"SELECT count(*) FROM read_csv('{path}', all_varchar = true)").fetchall()
        elif path.suffix == ".parquet":
            for _batch in con.sql(f"SELECT * FROM read_parquet('{path}')").to_arrow_reader(1_000_000):
                pass
    return time.perf_counter() - started


def row(name: str, seconds: float, peak: float, rows: int | None = None, note: str = "") -> str:
    rate = f"{rows / seconds:,.0f}" if rows and seconds > 0 else ""
    written = f"{rows:,}" if rows is not None else ""
    return f"| {name} | {seconds:,.1f} | {peak:,.0f} | {written} | {rate} | {note} |"


def benchmark(
    people: int, engine: str, fmt: str, report: bool, work: Path, people_per_slice: int, refresh: bool
) -> list[str]:
    source, store = work / "source", work / ("store.duckdb" if engine == "duckdb" else "store")
    generated = work / "synth.json"  # a kept folder's population is reused: synth is not part of the job
    if generated.exists():
        synth = json.loads(generated.read_text())
    else:
        synth = child("synth", out=str(source), people=people, format=fmt)
        generated.write_text(json.dumps(synth))
    floor = bare_read_seconds(source)
    ingest = child(
        "ingest", source=str(source), store=str(store), key=KEY, engine=engine, extract=synth["extract_date"]
    )
    print(
        f"({people:,}: ingest done in {ingest['seconds']:.1f} s, peak {max(ingest['peaks'].values()):,.0f} MB)",
        flush=True,
    )
    run = child("run", store=str(store), engine=engine, people_per_slice=people_per_slice)
    lines = [
        f"### {people:,} people, engine {engine}, input {fmt}",
        "",
        "| step | seconds | peak MB | rows | rows/s | note |",
        "|---|---:|---:|---:|---:|---|",
        row("synth (not part of the job)", synth["seconds"], max(synth["peaks"].values()), synth["rows"]),
        row("ingest", ingest["seconds"], max(ingest["peaks"].values()), ingest["rows"], "input rows"),
    ]
    for name, figures in run["stages"].items():
        lines.append(
            row(f"run: {name}", figures["seconds"], run["peaks"].get(name, 0.0), figures["rows"], "rows written")
        )
    lines.append(row("run (whole, incl. publish)", run["seconds"], max(run["peaks"].values())))
    total = ingest["seconds"] + run["seconds"]
    peak = max(max(ingest["peaks"].values()), max(run["peaks"].values()))
    if report:
        out = work / "report.html"
        made = child("report", store=str(store), out=str(out), engine=engine)
        total += made["seconds"]
        peak = max(peak, max(made["peaks"].values()))
        lines.append(
            row("report", made["seconds"], max(made["peaks"].values()), note=f"{made['bytes'] / 2**20:.1f} MB file")
        )
    lines += [
        row("**total (ingest + run" + (" + report" if report else "") + ")**", total, peak, ingest["rows"]),
        "",
        f"Bare DuckDB read of the input: {floor:.2f} s; total = {total / floor:.1f} x the bare read.",
        "",
    ]
    if refresh:
        again = child("run", store=str(store), engine=engine, people_per_slice=people_per_slice, refresh="latest")
        lines += ["| refresh step | seconds | peak MB | rows | rows/s | note |", "|---|---:|---:|---:|---:|---|"]
        for name, figures in again["stages"].items():
            share = figures["seconds"] / run["stages"][name]["seconds"] if run["stages"][name]["seconds"] else 0.0
            lines.append(
                row(
                    f"refresh: {name}",
                    figures["seconds"],
                    again["peaks"].get(name, 0.0),
                    figures["rows"],
                    f"{share:.0%} of its full run",
                )
            )
        lines += [
            row("**refresh (whole)**", again["seconds"], max(again["peaks"].values())),
            "",
            f"Refresh of the latest snapshot: {again['seconds']:.1f} s = "
            f"{again['seconds'] / run['seconds']:.0%} of the full run ({run['seconds']:.1f} s).",
            "",
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[100_000])
    parser.add_argument("--engine", default="duckdb", choices=["duckdb", "polars", "spark"])
    parser.add_argument("--format", default="parquet", choices=["parquet", "csv"])
    parser.add_argument("--no-report", action="store_true", help="Skip the HTML report step.")
    parser.add_argument(
        "--keep",
        type=Path,
        help="Keep the work folders under this folder (default: a temp dir); a kept population is reused.",
    )
    parser.add_argument("--people-per-slice", type=int, default=PEOPLE_PER_SLICE, help="As for 'phm run'.")
    parser.add_argument(
        "--refresh", action="store_true", help="Then time 'phm run --refresh latest' on the same store."
    )
    args = parser.parse_args()
    import psutil

    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}\n"
    )
    for people in args.people:
        base = args.keep or Path(tempfile.mkdtemp(prefix="openphm-bench-"))
        work = base / f"{people}-{args.engine}"
        work.mkdir(parents=True, exist_ok=True)
        try:
            lines = benchmark(
                people, args.engine, args.format, not args.no_report, work, args.people_per_slice, args.refresh
            )
            print("\n".join(lines), flush=True)
        finally:
            if not args.keep:
                shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
