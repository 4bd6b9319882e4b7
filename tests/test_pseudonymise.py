"""Pseudonyms: keyed, deterministic, linkable across tables and runs, and never the NHS number."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from openphm.errors import KeyMissingError
from openphm.ingest import ingest, load_key
from openphm.ingest.pseudonymise import KeyedHash
from tests.support.sources import ALICE, BOB, EXTRACT, KEY, person, read_table, store_path

Rows = dict[str, list[dict[str, object]]]


def _tables() -> Rows:
    return {
        "person": [person(ALICE), person(BOB)],
        "gp_event": [
            {
                "nhs_number": f"{ALICE[:3]} {ALICE[3:6]} {ALICE[6:]}",
                "event_date": "2023-01-01",
                "snomed_code": "38341003",
                "value": None,
                "unit": None,
            }
        ],
    }


def _pseudonyms(source_dir: Path, store: Path, key: bytes) -> tuple[dict[str, str], set[str]]:
    ingest(source_dir, store, key=key, extract_date=EXTRACT)
    people = read_table(store, "person").sort("date_of_birth")
    events = read_table(store, "gp_event")
    return dict(zip(people["person_id"], people["person_id"], strict=True)), set(events["person_id"])


def test_same_key_same_pseudonyms_across_tables_and_runs(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    folder = source(_tables())
    first, first_events = _pseudonyms(folder, store_path(tmp_path, "duckdb", "a"), KEY)
    second, _ = _pseudonyms(folder, store_path(tmp_path, "duckdb", "b"), KEY)
    assert first == second
    # The event was given with spaces in the NHS number; it still links to Alice's person row.
    assert first_events == {KeyedHash(KEY)([ALICE])[0]}
    assert first_events <= set(first)


def test_another_key_gives_unrelated_pseudonyms(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    folder = source(_tables())
    first, _ = _pseudonyms(folder, store_path(tmp_path, "duckdb", "a"), KEY)
    other, _ = _pseudonyms(folder, store_path(tmp_path, "duckdb", "b"), b"another-key-of-enough-length")
    assert not set(first) & set(other)


def test_pseudonym_is_hmac_sha256_as_published(tmp_path: Path) -> None:
    """Outside reference: OpenSSL's HMAC, then hex digits written as letters (0-9 -> g-p)."""
    digest = (
        subprocess.run(
            ["openssl", "dgst", "-sha256", "-hmac", KEY.decode()], input=ALICE.encode(), capture_output=True, check=True
        )
        .stdout.decode()
        .split()[-1]
    )
    expected = digest.translate(str.maketrans("0123456789", "ghijklmnop"))
    assert KeyedHash(KEY)([ALICE, None]) == [expected, None]
    assert len(expected) == 64 and not any(ch.isdigit() for ch in expected)


def test_key_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY + b"\n")
    key_file.chmod(0o600)
    assert load_key(key_file) == KEY
    monkeypatch.setenv("OPENPHM_KEY", KEY.decode())
    assert load_key(None) == KEY


@pytest.mark.parametrize("value", ["", "short"])
def test_missing_or_weak_key_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENPHM_KEY", value)
    with pytest.raises(KeyMissingError):
        load_key(None)


def test_key_never_reaches_the_store(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    store = store_path(tmp_path, "duckdb")
    ingest(source(_tables()), store, key=KEY, extract_date=EXTRACT)
    assert KEY not in store.read_bytes()
    assert repr(KeyedHash(KEY)) == "KeyedHash(<secret>)"
