"""Load test of ``phm serve``: many signed-in people browsing at once, latency per kind of request.

    python benchmarks/app_load.py [--people 1000000 | --store STORE] [--users 50] [--duration 120]

Without ``--store`` it synthesises N people, ingests them and runs every stage (as ``benchmarks/pipeline.py``
does) into a temporary folder (``--keep DIR`` keeps and reuses it). It then creates ``--users`` accounts in a new
app database (a third viewers, a third analysts scoped to one practice or PCN of the store, a third national
analysts), serves the app with ``phm serve`` in its own process on a free loopback port, signs every user in,
and lets them browse at once for ``--duration`` seconds: each user sends its next request as soon as the last
one is answered (``--think`` adds a pause), choosing at random among

- ``page``: the overview at a random level and area, the cohorts page;
- ``aggregates``: ``/api/aggregates/{table}`` for a random published table, level and area;
- ``areas``: ``/api/areas`` at a random level; ``cohorts``: ``/api/cohorts``;
- ``members``: a cohort's member list (analysts only, at a practice within their scope or all of it);
- ``spc``: any ``GET`` route whose path mentions ``spc``, when the app has one.

It prints p50 / p95 / p99 latency per group, requests per second and errors (any status >= 400, or no answer).

The client is httpx's AsyncClient - one event loop holding all the users, already a dependency of the tests -
rather than locust, which would add gevent and its own web interface for what is a fixed mix. The client runs
on the same machine as the server, so its CPU is part of what is measured; ``--profile GROUP`` afterwards
profiles 50 requests of one group in-process with pyinstrument (``pip install pyinstrument``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

PASSWORD = "load-test-password-not-secret"
KEY = "benchmark-key-not-secret-0123456789abcdef"
WEIGHTS = {"page": 3, "aggregates": 4, "areas": 1, "cohorts": 1, "members": 2, "spc": 1}
LEVELS = ("national", "region", "icb", "sub_icb", "pcn", "practice")


def build(people: int, work: Path) -> Path:
    """A store of ``people`` synthetic people (reused when ``work`` already holds one)."""
    from openphm import api

    store = work / "store.duckdb"
    if store.exists():
        return store
    started = time.perf_counter()
    synthetic = api.generate(work / "source", people=people, seed=1)
    api.ingest(work / "source", store, key=KEY.encode(), extract_date=synthetic.extract_date)
    api.run(store)
    print(f"built a store of {people:,} people in {time.perf_counter() - started:,.0f} s", flush=True)
    return store


def practices(store: Path) -> list[dict[str, str]]:
    import duckdb

    with duckdb.connect(str(store), read_only=True) as con:
        frame = con.sql("SELECT practice_code, pcn_code FROM practice ORDER BY practice_code").pl()
    return frame.to_dicts()


@dataclass(frozen=True)
class Person:
    name: str
    role: str
    scope: str  # LEVEL:CODE
    practice: str | None  # a practice within the scope, for member lists


def make_users(store: Path, app_db: str, count: int) -> list[Person]:
    """``count`` accounts: viewers, analysts at one practice or PCN, national analysts (in thirds)."""
    from openphm.app import accounts
    from openphm.app.settings import open_db

    factory = open_db(app_db)
    rng = random.Random(7)
    known = practices(store)
    people: list[Person] = []
    for i in range(count):
        pick = rng.choice(known)
        if i % 3 == 0:
            person = Person(f"viewer{i}", "viewer", "national", None)
        elif i % 3 == 1:
            if i % 2:
                person = Person(f"analyst{i}", "analyst", f"practice:{pick['practice_code']}", pick["practice_code"])
            else:
                person = Person(f"analyst{i}", "analyst", f"pcn:{pick['pcn_code']}", pick["practice_code"])
        else:
            person = Person(f"national{i}", "analyst", "national", pick["practice_code"])
        accounts.add_user(factory, person.name, person.role, [accounts.Scope.parse(person.scope)], PASSWORD)
        people.append(person)
    return people


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(store: Path, app_db: str, port: int) -> subprocess.Popen[bytes]:
    """``phm serve`` in its own process; returns once ``/healthz`` answers."""
    command = [sys.executable, "-c", "from openphm.cli import app; app()", "serve", "--store", str(store)]
    command += ["--app-db", app_db, "--port", str(port)]
    server = subprocess.Popen(command, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 300  # the first request builds the published tables; start-up reads the store
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("phm serve stopped before answering")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.terminate()
    sys.exit("phm serve did not answer /healthz within 300 s")


@dataclass
class Catalogue:
    """What there is to ask for: areas per level, tables, cohorts, SPC routes."""

    areas: dict[str, list[str]]
    tables: list[str]
    cohorts: list[str]
    spc: list[str]


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))


async def sign_in(client: httpx.AsyncClient, person: Person) -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if token is None:
        raise SystemExit("the sign-in page has no csrf_token")
    form = {"username": person.name, "password": PASSWORD, "csrf_token": token.group(1)}
    done = await client.post("/login", data=form)
    if done.status_code != 303:
        raise SystemExit(f"sign-in of {person.name} answered {done.status_code}")


async def catalogue(client: httpx.AsyncClient) -> Catalogue:
    from openphm.analytics import AGG_TABLES

    areas = {}
    for level in LEVELS:
        areas[level] = [a["code"] for a in (await client.get("/api/areas", params={"level": level})).json()]
    cohorts = [c["name"] for c in (await client.get("/api/cohorts")).json()]
    spec = (await client.get("/openapi.json")).json()
    spc = [p for p, ops in spec.get("paths", {}).items() if "spc" in p and "get" in ops and "{" not in p]
    return Catalogue(areas, list(AGG_TABLES), cohorts, spc)


def request_for(person: Person, cat: Catalogue, rng: random.Random) -> tuple[str, str, dict[str, str]]:
    """(group, path, query) of one random request this person may make."""
    groups = [g for g in WEIGHTS if (g != "members" or person.role == "analyst") and (g != "spc" or cat.spc)]
    group = rng.choices(groups, weights=[WEIGHTS[g] for g in groups])[0]
    level = rng.choice(LEVELS)
    area = rng.choice(cat.areas[level]) if cat.areas[level] else ""
    if group == "page":
        if rng.random() < 0.8:
            return group, "/", {"level": level, "area_code": area}
        return group, "/cohorts", {}
    if group == "aggregates":
        return group, f"/api/aggregates/{rng.choice(cat.tables)}", {"level": level, "area_code": area}
    if group == "areas":
        return group, "/api/areas", {"level": level}
    if group == "cohorts":
        return group, "/api/cohorts", {}
    if group == "members":
        query = {"practice_code": person.practice} if person.practice and rng.random() < 0.7 else {}
        return group, f"/api/cohorts/{rng.choice(cat.cohorts)}/members", query
    return group, rng.choice(cat.spc), {"level": level, "area_code": area}


async def browse(
    client: httpx.AsyncClient, person: Person, cat: Catalogue, until: float, think: float, tally: Tally, seed: int
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < until:
        group, path, query = request_for(person, cat, rng)
        started = time.perf_counter()
        try:
            response = await client.get(path, params=query, headers={"Accept": "text/html,application/json"})
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        tally.latencies[group].append(time.perf_counter() - started)
        tally.statuses[status] += 1
        if status == 0 or status >= 400:
            tally.errors[group] += 1
        if think:
            await asyncio.sleep(rng.expovariate(1 / think))


async def load(base: str, people: list[Person], duration: float, think: float) -> tuple[Tally, float, Catalogue]:
    """Everyone signs in first (not timed: 50 argon2 checks take a while), then the clock starts."""
    clients = [httpx.AsyncClient(base_url=base, timeout=60) for _ in people]
    try:
        await asyncio.gather(*(sign_in(c, p) for c, p in zip(clients, people, strict=True)))
        cat = await catalogue(clients[-1])
        tally = Tally()
        started = time.monotonic()
        until = started + duration
        await asyncio.gather(
            *(browse(c, p, cat, until, think, tally, i) for i, (c, p) in enumerate(zip(clients, people, strict=True)))
        )
        return tally, time.monotonic() - started, cat
    finally:
        for client in clients:
            await client.aclose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def table(tally: Tally, seconds: float) -> list[str]:
    lines = ["| group | requests | p50 ms | p95 ms | p99 ms | max ms | errors |", "|---|---:|---:|---:|---:|---:|---:|"]
    everything: list[float] = []
    for group in WEIGHTS:
        values = tally.latencies.get(group, [])
        if not values:
            continue
        everything += values
        ms = [percentile(values, q) * 1000 for q in (50, 95, 99, 100)]
        lines.append(
            f"| {group} | {len(values):,} | {ms[0]:,.0f} | {ms[1]:,.0f} | {ms[2]:,.0f} | {ms[3]:,.0f} | "
            f"{tally.errors.get(group, 0)} |"
        )
    if not everything:
        return ["no request was answered within the duration"]
    ms = [percentile(everything, q) * 1000 for q in (50, 95, 99, 100)]
    lines.append(
        f"| **all** | {len(everything):,} | {ms[0]:,.0f} | {ms[1]:,.0f} | {ms[2]:,.0f} | {ms[3]:,.0f} | "
        f"{sum(tally.errors.values())} |"
    )
    lines.append("")
    lines.append(f"{len(everything) / seconds:,.1f} requests/s over {seconds:,.0f} s; statuses {dict(tally.statuses)}")
    return lines


def profile(store: Path, app_db: str, person: Person, cat: Catalogue, group: str) -> None:
    """50 requests of ``group`` through the app in this process, under pyinstrument.

    pyinstrument samples one thread, so the app runs on this one: httpx's ASGI transport on this event loop, and
    FastAPI's hand-off of sync endpoints to worker threads replaced by a direct call."""
    import fastapi.routing
    from pyinstrument import Profiler

    from openphm.app.server import create_app
    from openphm.app.settings import AppSettings, load_key

    async def inline(func: Any, *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    fastapi.routing.run_in_threadpool = inline  # type: ignore[assignment]
    app = create_app(AppSettings(store=store, app_db=app_db, key=load_key(None, store)))
    rng = random.Random(1)
    wanted = []
    while len(wanted) < 51:
        chosen, path, query = request_for(person, cat, rng)
        if chosen == group:
            wanted.append((path, query))

    async def go() -> Profiler:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await sign_in(client, person)
            headers = {"Accept": "text/html,application/json"}
            await client.get(wanted[0][0], params=wanted[0][1], headers=headers)  # builds the published tables
            profiler = Profiler(async_mode="disabled")
            profiler.start()
            for path, query in wanted[1:]:
                await client.get(path, params=query, headers=headers)
            profiler.stop()
            return profiler

    text = asyncio.run(go()).output_text(unicode=False, color=False, flat=True, show_all=True)
    print("\n".join(text.splitlines()[:45]))  # the functions with the most time of their own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000, help="size of the store to build")
    parser.add_argument("--store", type=Path, help="use this store instead of building one")
    parser.add_argument("--keep", type=Path, help="build into (and reuse) this folder")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of browsing")
    parser.add_argument("--think", type=float, default=0.0, help="mean pause between a user's requests (s)")
    parser.add_argument("--profile", choices=list(WEIGHTS), help="afterwards, profile 50 requests of this group")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="openphm-load-"))
    work.mkdir(parents=True, exist_ok=True)
    store = args.store or build(args.people, work)
    app_db = f"sqlite:///{work / f'load-{int(time.time())}.sqlite'}"
    people = make_users(store, app_db, args.users)
    port = free_port()
    server = serve(store, app_db, port)
    try:
        tally, seconds, cat = asyncio.run(load(f"http://127.0.0.1:{port}", people, args.duration, args.think))
    finally:
        server.terminate()
        server.wait(30)
    print(f"\n{args.users} users, {seconds:,.0f} s, store {store} ({date.today()}), think {args.think} s\n")
    print("\n".join(table(tally, seconds)))
    print(json.dumps({g: len(v) for g, v in tally.latencies.items()}))
    if args.profile:
        analyst = next(p for p in people if p.role == "analyst" and p.scope == "national")
        profile(store, app_db, analyst, cat, args.profile)


if __name__ == "__main__":
    main()
