"""The pseudonymisation key: at least 256 bits, a private key file, and never shown to anyone.

RFC 2104 (section 3) asks for an HMAC key at least as long as the hash output: 256 bits for SHA-256.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openphm.cli import app
from openphm.errors import KeyMissingError
from openphm.ingest import load_key
from openphm.ingest.pseudonymise import key_bits
from tests.support.sources import ALICE, KEY, person, read_table

Rows = dict[str, list[dict[str, object]]]
SHORT_HEX = b"0123456789abcdef" * 3 + b"0123456789abcde"  # 63 hex digits: 252 bits
SHORT_RAW = b"short-but-not-hex-secret-xyz!!"  # 30 bytes: 240 bits


def _key_file(folder: Path, key: bytes, mode: int = 0o600) -> Path:
    path = folder / "phm.key"
    path.write_bytes(key + b"\n")
    path.chmod(mode)
    return path


def _ingest(folder: Path, store: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["ingest", str(folder), "--store", str(store), "--extract-date", "2025-01-01", *args]
    )
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("key", "bits"),
    [(b"ab" * 32, 256), (SHORT_HEX, 252), (KEY, 8 * len(KEY)), (SHORT_RAW, 240), (b"x" * 32, 256)],
)
def test_a_key_counts_4_bits_a_hex_digit_and_8_bits_a_byte(key: bytes, bits: int) -> None:
    assert key_bits(key) == bits


@pytest.mark.parametrize("key", [SHORT_HEX, SHORT_RAW])
def test_a_key_shorter_than_256_bits_is_refused_without_showing_it(tmp_path: Path, key: bytes) -> None:
    with pytest.raises(KeyMissingError) as refused:
        load_key(_key_file(tmp_path, key))
    assert "256" in str(refused.value) and key.decode() not in str(refused.value)
    for part in (key[:8], key[-8:]):  # not even a piece of it
        assert part.decode() not in str(refused.value)


def test_cli_refuses_a_short_key_in_one_line_that_does_not_contain_it(
    source: Callable[[Rows], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENPHM_KEY", SHORT_RAW.decode())
    code, output = _ingest(source({"person": [person(ALICE)]}), tmp_path / "s.duckdb")
    assert code == 2 and len(output.strip().splitlines()) == 1 and "Traceback" not in output
    assert SHORT_RAW.decode() not in output and "fewer than 256" in output


def test_phm_key_new_writes_a_private_key_that_load_key_accepts(tmp_path: Path) -> None:
    path = tmp_path / "new.key"
    result = CliRunner().invoke(app, ["key", "new", str(path)])
    assert result.exit_code == 0, result.output
    assert path.stat().st_mode & 0o777 == 0o600
    key = load_key(path)
    assert len(key) == 64 and key_bits(key) == 256
    assert key.decode() not in result.output


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_key_file_other_users_may_read_is_refused(
    source: Callable[[Rows], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    monkeypatch.delenv("OPENPHM_KEY", raising=False)
    key_file = _key_file(tmp_path, KEY, mode)
    store = tmp_path / "s.duckdb"
    code, output = _ingest(source({"person": [person(ALICE)]}), store, "--key-file", str(key_file))
    assert code == 2 and len(output.strip().splitlines()) == 1, output
    assert "chmod 600" in output and KEY.decode() not in output
    assert not store.exists()


def test_a_shared_key_file_is_used_when_allowed_with_a_warning_and_a_run_log_row(
    source: Callable[[Rows], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENPHM_KEY", raising=False)
    key_file = _key_file(tmp_path, KEY, 0o644)
    store = tmp_path / "s.duckdb"
    folder = source({"person": [person(ALICE)]})
    code, output = _ingest(folder, store, "--key-file", str(key_file), "--allow-shared-key-file")
    assert code == 0, output
    assert "warning" in output and KEY.decode() not in output
    log = read_table(store, "run_log")
    assert log.filter(log["metric"] == "shared_key_file_allowed").height == 1
    # A private key file is not logged as shared.
    key_file.chmod(0o600)
    code, output = _ingest(folder, store, "--key-file", str(key_file), "--allow-shared-key-file")
    assert code == 0 and "warning" not in output
    log = read_table(store, "run_log")
    assert log.filter(log["metric"] == "shared_key_file_allowed").height == 0


def test_a_missing_key_file_is_one_line(source: Callable[[Rows], Path], tmp_path: Path) -> None:
    code, output = _ingest(
        source({"person": [person(ALICE)]}), tmp_path / "s.duckdb", "--key-file", str(tmp_path / "nope")
    )
    assert code == 2 and "not found" in output and len(output.strip().splitlines()) == 1
