"""Generated source folders thrown at `phm ingest`: the reader is where untrusted files enter.

Hypothesis builds whole folders - CSV and Parquet; UTF-8, UTF-8 with BOM, latin-1 and UTF-16; quoted
newlines, ragged rows, NUL bytes, very long fields; duplicated, missing, reordered and extra columns; NHS
numbers mangled by a spreadsheet (9.99E+09, 9990000018.0, spaces); dates in every common format; codes with
lost leading zeros - and for each one checks that ingest (in-process, through the CLI):

- never shows a traceback and exits 0, or 2 with one line;
- on success accounts for every input row in ``run_log`` (input = loaded + quarantined + opted out, and
  input = the rows written), every quarantine row has a reason and a row number inside the file;
- shows no identifier (NHS number, date of birth as written) in its output, ``quarantine`` or ``run_log``,
  and stores no NHS number as a supplied ``person_id``.

The normal run tries a bounded number of folders per engine; ``pytest -m fuzz tests/test_fuzz_reader.py``
runs 10,000 (``OPENPHM_FUZZ_EXAMPLES`` changes the number). See docs/security.md.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from random import Random

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from openphm.cli import app
from openphm.contract.schema import TABLES
from tests.support.sources import ENGINES, KEY, nhs_number, read_table, store_path

VALID = [n for n in (nhs_number(s) for s in range(1, 40)) if n][:24]
"""Modulus 11 valid numbers from the range reserved for testing."""
EXTRACT = "2025-06-30"
TABLE_CHOICES = ("opt_out", "gp_event", "apc_episode", "apc_diagnosis", "practice")
DATE_FORMATS = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d-%m-%Y",
    "%Y%m%d",
    "%d.%m.%Y",
    "%d-%b-%Y",
    "%d %B %Y",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%d/%m/%y",
    "%Y/%m/%d",
)
ENCODINGS = ("utf-8",) * 30 + ("utf-8-sig",) * 3 + ("latin-1", "utf-16", "cp1252")
FIND = (Phase.explicit, Phase.reuse, Phase.generate)
"""No shrinking: a failing folder is reported as generated (its kinds are in the message); shrinking a
whole folder can take many minutes."""
CI_EXAMPLES = {"duckdb": 60, "polars": 40, "spark": 5}


@dataclass
class Folder:
    """What was written, and the identifiers that must never be shown."""

    files: dict[str, bytes] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    identifiers: set[str] = field(default_factory=set)
    kinds: list[str] = field(default_factory=list)
    chance: Random = field(default_factory=Random)
    """Uniform choices for the faults (Hypothesis's own draws favour the first and smallest values)."""

    def one_in(self, n: int) -> bool:
        return self.chance.randrange(n) == 0


JUNK = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["\x00", "a\x00b", "a\nb", "a\r\nb", '"', '""', ",", ";", "\t", " ", "NULL", "N/A", "#N/A", "-"]),
    st.sampled_from([1_000, 70_000]).map(lambda n: "x" * n),
    st.sampled_from(["é", "ü", "€", "’", "\ufeff", "\u2028", "ø", "ß", "😀"]),
)


@st.composite
def nhs(draw: st.DrawFn) -> str:
    number = draw(st.sampled_from(VALID))
    kind = draw(st.integers(0, 9))
    if kind <= 4:
        return number
    return draw(
        st.sampled_from(
            [
                f"{number[:3]} {number[3:6]} {number[6:]}",
                f"{int(number):.2E}",  # a spreadsheet's 9.99E+09
                f"{number}.0",
                number.lstrip("9"),
                f"{number[:3]}-{number[3:6]}-{number[6:]}",
                f" {number} ",
                "",
            ]
        )
    )


@st.composite
def a_date(draw: st.DrawFn) -> str:
    day = draw(st.dates(min_value=date(1890, 1, 1), max_value=date(2026, 12, 31)))
    if draw(st.integers(0, 19)) == 0:
        return draw(st.sampled_from(["", "0000-00-00", "2023-02-30", "31/02/2020", "yesterday", "43861", "1e3"]))
    return day.strftime(draw(st.sampled_from(DATE_FORMATS)))


def _code(draw: st.DrawFn, valid: list[str]) -> str:
    value = draw(st.sampled_from(valid))
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return value.lstrip("0") or value  # a spreadsheet dropped the leading zeros
    if kind == 1:
        return f"{float(value):.2E}" if value.isdigit() else value.lower()
    if kind == 2:
        return draw(JUNK)
    return value


def _value(draw: st.DrawFn, table: str, column: str, ids: list[str], episodes: list[str]) -> str:
    if draw(st.integers(0, 29)) == 0:
        return draw(JUNK)
    if column == "nhs_number":
        return draw(st.sampled_from(ids))
    if column == "person_id":
        number = draw(st.sampled_from(VALID))
        return draw(st.sampled_from(["abc", "P1", number, f"{number[:3]} {number[3:6]} {number[6:]}", f"{number}.0"]))
    if column == "episode_id":
        return draw(st.sampled_from(episodes))
    kind = TABLES[table].column(column).type
    if kind == "date":
        return draw(a_date())
    choices = {
        "sex": ["F", "M", "U", "f", "Male", "1", "2"],
        "ethnicity": ["A", "B", "Z", "", "99", "a"],
        "lsoa_code": ["E01000001", "E01033768", "W01000001", "E1000001", "e01000001"],
        "practice_code": ["Y90001", "A81001", "000123", "Y9"],
        "snomed_code": ["38341003", "044054006", "271649006", "1000000000000001"],
        "admission_method": ["21", "2A", "11", "01", "1"],
        "icd10_code": ["I50.0", "I500", "E11", "J44.1", "A00", "0"],
        "position": ["1", "2", "01", "1.0", "0", "100"],
        "acg_png": ["1", "11", "05", "12"],
        "value": ["1", "-2.5", "1e3", "1,5", "NaN", "inf", ""],
        "cost": ["100", "-5", "1E+02", "£10", ""],
    }
    if column in choices:
        return _code(draw, choices[column])
    return draw(st.one_of(st.text(max_size=8), st.sampled_from(["", "x"])))


@st.composite
def folders(draw: st.DrawFn) -> Folder:
    folder = Folder(chance=draw(st.randoms(use_true_random=True)))
    ids = draw(st.lists(nhs(), min_size=1, max_size=6))
    episodes = draw(st.lists(st.sampled_from(["E1", "E2", "E3", "0001", "1", ""]), min_size=1, max_size=3))
    tables = ["person", *draw(st.lists(st.sampled_from(TABLE_CHOICES), unique=True, max_size=3))]
    if "apc_diagnosis" in tables and "apc_episode" not in tables and not folder.one_in(5):
        tables.insert(1, "apc_episode")  # mostly with its parent, so the rows are read, not refused
    for name in tables:
        columns = [c.name for c in TABLES[name].columns]
        if TABLES[name].person_level:
            columns[columns.index("person_id")] = "person_id" if folder.one_in(10) else "nhs_number"
        header = _header(draw, folder, columns)
        rows = [
            [_value(draw, name, c, ids, episodes) if c in columns else draw(JUNK) for c in header]
            for _ in range(draw(st.integers(0, 6)))
        ]
        for row in rows:
            for column, value in zip(header, row, strict=True):
                if column in ("nhs_number", "person_id") or (name == "person" and column == "date_of_birth"):
                    folder.identifiers.update(_identifying(value))
        if folder.one_in(4):
            folder.files[f"{name}.parquet"] = _parquet(draw, folder, header, rows)
        else:
            folder.files[f"{name}.csv"] = _csv(draw, folder, header, rows)
        folder.rows[name] = len(rows)
    return folder


def _identifying(value: str) -> set[str]:
    """Forms of a value that would identify a person if shown: the value itself and its digits."""
    found = {value.strip()} if len(value.strip()) >= 8 else set()
    digits = re.sub(r"[^0-9]", "", value)
    if len(digits) >= 8 and not re.fullmatch(r"[0-9.]+E\+[0-9]+", value):  # 9.99E+09 holds no identifier
        found.add(digits)
    return found


def _header(draw: st.DrawFn, folder: Folder, columns: list[str]) -> list[str]:
    header = list(columns)
    if len(header) > 1 and folder.one_in(10):
        dropped = folder.chance.choice(header)
        header.remove(dropped)
        folder.kinds.append("missing column")
    if folder.one_in(10):
        header.append(folder.chance.choice(["notes", "Extra Column", "", "nhs_number ", "unit", "é"]))
        folder.kinds.append("extra column")
    if header and folder.one_in(15):
        header.append(folder.chance.choice(header))
        folder.kinds.append("duplicated column")
    if folder.one_in(2):
        folder.chance.shuffle(header)
    return header


def _csv(draw: st.DrawFn, folder: Folder, header: list[str], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(
        buffer,
        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
        lineterminator=draw(st.sampled_from(["\n", "\r\n"])),
    )
    if not folder.one_in(30):
        writer.writerow(header)
    else:
        folder.kinds.append("no header")
    for row in rows:
        if folder.one_in(15):  # ragged
            # A short row of a one-column file would be a blank line, which holds no record (not a ragged row).
            row = row[:-1] if draw(st.booleans()) and len(row) > 1 else [*row, "surplus"]
            folder.kinds.append("ragged row")
        writer.writerow(row)
    text = buffer.getvalue()
    if folder.one_in(20):
        text = text.rstrip("\r\n")  # no newline at the end
    encoding = folder.chance.choice(ENCODINGS)
    folder.kinds.append(f"csv {encoding}")
    return text.encode(encoding, errors="replace")


def _parquet(draw: st.DrawFn, folder: Folder, header: list[str], rows: list[list[str]]) -> bytes:
    columns = {}
    for i, name in enumerate(header):
        values = [row[i] for row in rows]
        if name == "nhs_number" and draw(st.booleans()):  # read into a spreadsheet or pandas: a number
            numbers = [float(v) if re.fullmatch(r"[0-9]{1,10}", v) else None for v in values]
            kind = draw(st.sampled_from([pa.float64(), pa.int64()]))
            columns[f"{name}\x00{i}"] = pa.array(
                [None if v is None else (int(v) if kind == pa.int64() else v) for v in numbers], kind
            )
            folder.kinds.append(f"parquet nhs_number {kind}")
        else:
            columns[f"{name}\x00{i}"] = pa.array([v.replace("\x00", "") for v in values], pa.string())
    table = pa.table(columns) if columns else pa.table({"x": pa.array([], pa.string())})
    if columns:
        table = table.rename_columns(header)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    folder.kinds.append("parquet")
    return sink.getvalue().to_pybytes()


def _check(folder: Folder, engine: str) -> None:
    with tempfile.TemporaryDirectory(prefix="phm-fuzz-") as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        for name, content in folder.files.items():
            (source / name).write_bytes(content)
        store = store_path(Path(tmp), engine)
        result = CliRunner().invoke(
            app,
            ["ingest", str(source), "--store", str(store), "--engine", engine, "--extract-date", EXTRACT],
            env={"OPENPHM_KEY": KEY.decode(), "COLUMNS": "200"},
        )
        shown = result.output
        assert result.exit_code in (0, 2), (result.exit_code, folder.kinds, shown, result.exception)
        assert "Traceback" not in shown and not isinstance(result.exception, AssertionError | KeyError)
        _no_identifier(folder, shown, "output")
        if result.exit_code == 2:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("error:"), (folder.kinds, result.stderr)
            return
        _reconciled(folder, store, engine)


def _reconciled(folder: Folder, store: Path, engine: str) -> None:
    log = read_table(store, "run_log", engine)
    counts = log.filter(pl.col("step") == "reconcile").pivot("metric", index="item", values="value")
    for row in counts.iter_rows(named=True):
        table = row["item"]
        assert row["input_rows"] == folder.rows[table], (table, row, folder.kinds)
        assert row["input_rows"] == row["loaded"] + row["quarantined"] + row["opted_out"], (table, row)
    assert set(counts["item"]) == set(folder.rows), folder.kinds
    for column in ("item", "detail"):
        _no_identifier(folder, "\n".join(v for v in log[column].to_list() if v), "run_log")
    tables = set(log["item"])
    if "quarantine" in _tables(store, engine):
        quarantine = read_table(store, "quarantine", engine)
        assert quarantine["reason"].null_count() == 0 and quarantine["message"].null_count() == 0
        spans = quarantine.group_by("table").agg(pl.col("row").min().alias("first"), pl.col("row").max().alias("last"))
        for table, first, last in spans.iter_rows():
            assert table in tables and 1 <= first <= last <= folder.rows[table], (table, folder.kinds)
        for column in ("table", "column", "reason", "message"):
            _no_identifier(folder, "\n".join(quarantine[column].to_list()), "quarantine")
    for table in folder.rows:
        if TABLES[table].person_level and folder.rows[table] and table in _tables(store, engine):
            stored = read_table(store, table, engine)["person_id"].to_list()
            digits = {re.sub(r"[^0-9]", "", p) for p in stored}
            assert not digits & set(VALID), f"{table}: an NHS number stored as person_id"


def _tables(store: Path, engine: str) -> set[str]:
    from openphm.engine import open_store

    eng = open_store(store, engine)
    try:
        return set(eng.tables())
    finally:
        eng.close()


def _no_identifier(folder: Folder, text: str, where: str) -> None:
    leaked = [value for value in folder.identifiers if value in text]
    assert not leaked, f"{where} shows an identifier ({len(leaked)} values; kinds {folder.kinds})"


@pytest.mark.parametrize("engine", ENGINES)
def test_generated_folders_load_quarantine_or_stop_in_one_line(engine: str) -> None:
    run = settings(
        max_examples=CI_EXAMPLES[engine],
        deadline=None,
        derandomize=True,
        phases=FIND,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )(given(folders())(lambda folder: _check(folder, engine)))
    run()


@pytest.mark.fuzz
def test_ten_thousand_generated_folders(request: pytest.FixtureRequest) -> None:
    if "fuzz" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("10,000 generated folders: run with -m fuzz")
    run = settings(
        max_examples=int(os.environ.get("OPENPHM_FUZZ_EXAMPLES", "10000")),
        deadline=None,
        database=None,
        phases=FIND,
        suppress_health_check=list(HealthCheck),
    )(given(folders())(lambda folder: _check(folder, "duckdb")))
    run()


# What the fuzzing found, kept as crafted cases on every engine.
PERSON = "nhs_number,date_of_birth,sex\n"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("body", "rows"),
    [
        (f"{VALID[0]},1950-01-01,F\n#N/A,1950-01-01,F\n{VALID[1]},1950-01-01,M\n", 3),  # not a comment
        (f'{VALID[0]},1950-01-01,"F\nM"\n"{VALID[1]}",1950-01-01,"M ""x"""\n', 2),  # quoted newline, quotes
        (f"{VALID[0]},1950-01-01,F\n{VALID[1]},1950-01-01,M,surplus\n", None),  # ragged: refused
        # A short row: DuckDB refuses the file; Polars reads the missing field as null (quarantined).
        (f"{VALID[0]},1950-01-01,F\n{VALID[1]},1950-01-01\n{VALID[2]},1950-01-01,F\n", -1),
    ],
)
def test_every_row_is_counted_or_the_file_refused(engine: str, body: str, rows: int | None) -> None:
    folder = Folder(files={"person.csv": (PERSON + body).encode()}, rows={"person": 3 if rows == -1 else rows or 0})
    folder.identifiers.update(VALID[:3])
    with tempfile.TemporaryDirectory(prefix="phm-crafted-") as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        (source / "person.csv").write_bytes(folder.files["person.csv"])
        store = store_path(Path(tmp), engine)
        result = CliRunner().invoke(
            app,
            ["ingest", str(source), "--store", str(store), "--engine", engine, "--extract-date", EXTRACT],
            env={"OPENPHM_KEY": KEY.decode()},
        )
        if rows is None or (rows == -1 and result.exit_code == 2):
            assert result.exit_code == 2 and "person.csv" in result.stderr, result.output
            assert len(result.stderr.strip().splitlines()) == 1
        else:
            assert result.exit_code == 0, result.output
            _reconciled(folder, store, engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_an_nhs_number_supplied_as_person_id_is_never_stored(engine: str) -> None:
    number = VALID[3]
    forms = [
        number,
        f"{number[:3]} {number[3:6]} {number[6:]}",
        f"{number[:3]}-{number[3:6]}-{number[6:]}",
        f"{number}.0",
    ]
    body = "person_id,date_of_birth,sex\n" + "".join(f"{form},1950-01-01,F\n" for form in forms) + "P1,1950-01-01,M\n"
    with tempfile.TemporaryDirectory(prefix="phm-crafted-") as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        (source / "person.csv").write_text(body, encoding="utf-8")
        store = store_path(Path(tmp), engine)
        result = CliRunner().invoke(
            app,
            ["ingest", str(source), "--store", str(store), "--engine", engine, "--extract-date", EXTRACT],
            env={"OPENPHM_KEY": KEY.decode()},
        )
        assert result.exit_code == 0, result.output
        assert read_table(store, "person", engine)["person_id"].to_list() == ["P1"]
        quarantine = read_table(store, "quarantine", engine)
        assert sorted(quarantine["row"]) == [1, 2, 3, 4]
        assert set(quarantine["reason"]) == {"person_id_is_nhs_number"}
