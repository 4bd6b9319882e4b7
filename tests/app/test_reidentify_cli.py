"""``phm reidentify``: the controller's command-line route, the same matching rule as the API, audited in the same
chain that ``phm audit verify`` checks."""

from __future__ import annotations

import csv
import json
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from openphm.app.db import AuditRow, connect
from openphm.cli import app as cli
from tests.app.test_direct_care import COHORT_QUERY
from tests.support.direct_care import all_source_numbers, csv_list, expected, practice_numbers


@pytest.fixture(scope="module")
def cohort(app_store: Path) -> str:
    import duckdb

    with duckdb.connect(str(app_store), read_only=True) as con:
        row = con.execute(COHORT_QUERY).fetchone()
    assert row is not None
    return str(row[0])


def test_phm_reidentify_end_to_end(app_store: Path, tmp_path: Path, cohort: str) -> None:
    own = practice_numbers(app_store, "SYN00001")
    listed = tmp_path / "list.csv"
    listed.write_bytes(csv_list([*own, "1234567890"]))
    out, url = tmp_path / "worklist.csv", f"sqlite:///{tmp_path / 'app.sqlite'}"
    base = ["--store", str(app_store), "--app-db", url]
    args = ["reidentify", *base, "--key-file", str(app_store.parent / "phm.key"), "--cohort", cohort]
    args += ["--practice", "syn00001", "--list", str(listed), "--purpose", "Frailty clinic invitations"]
    args += ["--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    want = expected(app_store, cohort, "SYN00001", own)
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["nhs_number"] for r in rows} == want and len(rows) == len(want) > 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert f"{len(want):,} of {len(own) + 1:,}" in result.output
    # one audit row, with the counts and no number; the chain verifies
    with connect(url)() as db:
        (row,) = db.execute(sa.select(AuditRow)).scalars()
    detail = json.loads(row.detail)
    assert row.action == "reidentification_command" and row.actor.startswith("cli:")
    assert (detail["practice_code"], detail["cohort"], detail["matched"]) == ("SYN00001", cohort, len(want))
    assert detail["invalid"] >= 1 and detail["purpose"] == "Frailty clinic invitations"
    assert not any(n in row.detail for n in all_source_numbers(app_store))
    verified = CliRunner().invoke(cli, ["audit", "verify", *base])
    assert verified.exit_code == 0 and "intact: 1 rows" in verified.output
    # the same worklist is never overwritten; a purpose holding a number is refused without echoing it
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "exists" in again.output
    args[args.index("--purpose") + 1] = f"call {own[0]}"
    args[args.index("--out") + 1] = str(tmp_path / "other.csv")
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 2 and own[0] not in refused.output and "identifier" in refused.output


def test_phm_serve_takes_the_pseudonymisation_key_with_ingest_checks(app_store: Path, tmp_path: Path) -> None:
    """``--key-file`` is the pseudonymisation key (the ingest's checks); ``--secret-file`` signs the forms."""
    shared = tmp_path / "shared.key"
    shared.write_bytes((app_store.parent / "phm.key").read_bytes())
    shared.chmod(0o644)
    short = tmp_path / "short.key"
    short.write_text("abc123")
    short.chmod(0o600)
    secret = tmp_path / "secret"
    secret.write_text("s" * 40)
    base = ["serve", "--store", str(app_store), "--app-db", f"sqlite:///{tmp_path / 'app.sqlite'}"]
    for key, message in ((shared, "other users may read"), (short, "fewer than 256")):
        result = CliRunner().invoke(cli, [*base, "--secret-file", str(secret), "--key-file", str(key)])
        assert result.exit_code == 2 and message in result.output, result.output
        assert "abc123" not in result.output and shared.read_text().strip() not in result.output
    weak = tmp_path / "weak-secret"
    weak.write_text("short")
    result = CliRunner().invoke(cli, [*base, "--secret-file", str(weak)])
    assert result.exit_code == 2 and "--secret-file" in result.output
