"""The run log: one long table that says what every run did, for audit and for reconciliation.

Each row is one fact: (run, step, item, metric, value/detail). Ingest writes the purpose, the
per-table reconciliation and the quarantine counts; the runner writes each stage's time and row counts;
later stages add their own facts (e.g. implausible values dropped) without a schema change.
Nothing in it identifies a person: items are table, stage and column names.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import narwhals as nw
import pyarrow as pa

from openphm import __version__
from openphm.engine import Engine

TABLE = "run_log"
SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("command", pa.string()),
        ("purpose", pa.string()),
        ("engine", pa.string()),
        ("recorded_at", pa.string()),
        ("step", pa.string()),
        ("item", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("detail", pa.string()),
    ]
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class RunLog:
    """Facts of one run, written to the store in one go when the run completes."""

    command: str
    purpose: str
    engine: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    rows: list[dict[str, object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.add("run", "openphm", "version", detail=__version__)
        self.add("run", "purpose", "purpose", detail=self.purpose)

    def add(self, step: str, item: str, metric: str, value: float | None = None, detail: str | None = None) -> None:
        self.rows.append(
            {
                "run_id": self.run_id,
                "command": self.command,
                "purpose": self.purpose,
                "engine": self.engine,
                "recorded_at": _now(),
                "step": step,
                "item": item,
                "metric": metric,
                "value": None if value is None else float(value),
                "detail": detail,
            }
        )

    def arrow(self) -> pa.Table:
        """The facts so far, as a table of the run log's columns."""
        return pa.Table.from_pylist(self.rows, schema=SCHEMA)

    def write(self, engine: Engine) -> None:
        engine.append(TABLE, engine.frame(self.arrow()))


def last_purpose(engine: Engine) -> str | None:
    """The purpose under which the store's data were ingested."""
    if not engine.has_table(TABLE):
        return None
    rows = (
        engine.table(TABLE)
        .filter((nw.col("command") == "ingest") & (nw.col("metric") == "purpose"))
        .select("recorded_at", "detail")
        .collect()
        .sort("recorded_at")
        .rows()
    )
    return rows[-1][1] if rows else None
