"""Fixtures of the application's tests: one small synthetic store per session, app databases on SQLite and
PostgreSQL, and signed-in clients.

The store: 2,000 synthetic people in four practices, re-parented into two PCNs, two sub-ICBs and two ICBs of one
region, so every scope level has an inside and an outside. Its pseudonymisation key is kept beside it (``phm.key``, mode
600) and its source files in ``source/``, so the direct-care tests know the real NHS numbers of its members.
"""

from __future__ import annotations

import copy
import importlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from fastapi.testclient import TestClient

from openphm import api
from openphm.app.data import StoreReader
from openphm.app.security import Limits
from openphm.app.server import create_app
from tests.support.app import HIERARCHY, PRACTICES, settings

synth_generate = importlib.import_module("openphm.synth.generate")  # the module (the package exports the function)
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def app_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("app-store")
    params = copy.deepcopy(synth_generate.parameters())
    params["practices"]["mean_list_size"] = 500  # four practices for 2,000 people
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(synth_generate, "parameters", lambda: params)
        synthetic = api.generate(folder / "source", people=2000, seed=3)
    practice_csv = folder / "source" / "practice.csv"
    table = pacsv.read_csv(practice_csv)
    codes = table["practice_code"].to_pylist()
    assert sorted(codes) == list(PRACTICES)
    columns = {"practice_code": codes, "practice_name": [f"Practice {c}" for c in codes]}
    for i, level in enumerate(("pcn", "sub_icb", "icb", "region")):
        columns[f"{level}_code"] = [HIERARCHY[c][i] for c in codes]
        columns[f"{level}_name"] = [f"{level} {HIERARCHY[c][i]}" for c in codes]
    pacsv.write_csv(pa.table(columns), practice_csv)
    store = folder / "phm.duckdb"
    key = api.new_key()
    (folder / "phm.key").write_bytes(key)
    (folder / "phm.key").chmod(0o600)
    api.ingest(folder / "source", store, key=key, extract_date=synthetic.extract_date)
    api.run(store)
    return store


def _postgres_reachable() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def new_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], str]]:
    """A maker of empty app databases on one backend: a new SQLite file each time; on PostgreSQL one database
    for the session (created here, dropped at the end), emptied each time (creating one per test is slow)."""
    if request.param == "postgresql" and not _postgres_reachable():
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is unreachable")
    name = f"openphm_test_{uuid.uuid4().hex[:12]}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    created = False

    def make() -> str:
        nonlocal created
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('appdb') / 'app.sqlite'}"
        if not created:
            with psycopg.connect(PG_ADMIN, autocommit=True) as con:
                con.execute(f'CREATE DATABASE "{name}"')
            created = True
            return url
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as con:
            con.execute("TRUNCATE users, grants, sessions, login_attempts, audit RESTART IDENTITY CASCADE")
            con.execute(f"UPDATE audit_head SET last_id = 0, last_hash = '{'0' * 64}'")
        return url

    yield make
    if created:
        with psycopg.connect(PG_ADMIN, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def store_reader(app_store: Path) -> StoreReader:
    """One reader for every app of the session: the published tables are computed once, not once per app."""
    return StoreReader(app_store)


@pytest.fixture
def make_client(app_store: Path, new_db: Callable[[], str], store_reader: StoreReader) -> Callable[..., TestClient]:
    """A client of a new app (on a fresh database) with the given settings."""

    def make(limits: Limits | None = None, base_url: str = "http://testserver", **changes: object) -> TestClient:
        app = create_app(settings(app_store, new_db(), limits=limits or Limits(), **changes))
        app.state.phm.store = store_reader
        return TestClient(app, base_url=base_url, follow_redirects=False)

    return make
