"""Helpers of the direct-care tests: the app store's key and real NHS numbers, expected matches read with DuckDB's
own SQL and an independent HMAC, and the re-identification calls."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
from fastapi.testclient import TestClient

LETTERS = str.maketrans("0123456789", "ghijklmnop")


def store_key(store: Path) -> bytes:
    return (store.parent / "phm.key").read_bytes().strip()


def pseudonym(key: bytes, number: str) -> str:
    """The documented recipe (docs/security.md): HMAC-SHA256 of the number without spaces, digits as letters."""
    return hmac.new(key, number.replace(" ", "").encode(), hashlib.sha256).hexdigest().translate(LETTERS)


def modulus11(number: str) -> bool:
    """The NHS number check digit, written out again here (not the package's expression)."""
    if len(number) != 10 or not number.isdigit():
        return False
    check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(number[:9])) % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(number[9])


def practice_numbers(store: Path, practice: str) -> list[str]:
    """The NHS numbers of the source's people at ``practice`` (as the synthetic extract holds them: some spaced,
    some broken)."""
    people = pl.read_parquet(store.parent / "source" / "person.parquet")
    return people.filter(pl.col("practice_code") == practice)["nhs_number"].drop_nulls().to_list()


def all_source_numbers(store: Path) -> set[str]:
    people = pl.read_parquet(store.parent / "source" / "person.parquet")
    return {n.replace(" ", "") for n in people["nhs_number"].drop_nulls().to_list() if modulus11(n.replace(" ", ""))}


def members(store: Path, cohort: str, practice: str) -> tuple[date, set[str]]:
    """The cohort's members at the latest as_of registered at ``practice``, by DuckDB's SQL on the store."""
    with duckdb.connect(str(store), read_only=True) as con:
        (as_of,) = con.execute("SELECT max(as_of) FROM population").fetchone() or (None,)
        rows = con.execute(
            "SELECT DISTINCT m.person_id FROM cohort_member m JOIN population p "
            "ON p.person_id = m.person_id AND p.as_of = m.as_of "
            "WHERE m.cohort = ? AND m.as_of = ? AND p.practice_code = ?",
            [cohort, as_of, practice],
        ).fetchall()
    return as_of, {r[0] for r in rows}


def expected(store: Path, cohort: str, practice: str, numbers: list[str]) -> set[str]:
    """The numbers of ``numbers`` (valid ones) whose person is a member registered at the practice."""
    key = store_key(store)
    _, wanted = members(store, cohort, practice)
    valid = {n.replace(" ", "") for n in numbers if modulus11(n.replace(" ", ""))}
    return {n for n in valid if pseudonym(key, n) in wanted}


def csv_list(numbers: list[str], header: bool = True) -> bytes:
    return (("nhs_number\n" if header else "") + "\n".join(numbers) + "\n").encode()


def submit(
    client: TestClient, cohort: str, practice: str, body: bytes, purpose: str = "Proactive frailty review clinic"
) -> tuple[int, dict[str, object]]:
    token = client.get("/api/me").json()["csrf_token"]
    response = client.post(
        "/api/reidentification",
        data={"cohort": cohort, "practice_code": practice, "purpose": purpose},
        files={"list": ("list.csv", body, "text/csv")},
        headers={"X-CSRF-Token": token},
    )
    return response.status_code, response.json()


def post(client: TestClient, path: str) -> tuple[int, dict[str, object]]:
    token = client.get("/api/me").json()["csrf_token"]
    response = client.post(path, headers={"X-CSRF-Token": token})
    return response.status_code, response.json()
