"""Coded events from every setting, and their matching against code lists.

All coded columns are brought to one shape - (person_id, date, system, code, setting) - with codes
normalised per system. Exact systems (SNOMED CT, dm+d) match by equality. Prefix systems (ICD-10, OPCS-4,
BNF) match by equality on a prefix of each length the lists use, which keeps matching a plain equi-join
that every engine runs well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import narwhals as nw
import pyarrow as pa

from openphm.codes import CODED_COLUMNS, CodedColumn, Codelist
from openphm.engine import Engine

EVENT_COLUMNS = ("person_id", "date", "system", "code", "setting")


def _events_of(column: CodedColumn, tables: Mapping[str, nw.LazyFrame | None]) -> nw.LazyFrame | None:
    frame = tables.get(column.table)
    if frame is None:
        return None
    if column.table in ("apc_diagnosis", "apc_procedure"):
        episodes = tables.get("apc_episode")
        if episodes is None:
            return None
        frame = frame.join(episodes.select("episode_id", "person_id", "admission_date"), on="episode_id", how="inner")
    return frame.filter(~nw.col(column.column).is_null()).select(
        nw.col("person_id"),
        nw.col(column.date).alias("date"),
        nw.lit(column.system.name).alias("system"),
        column.system.normalise(nw.col(column.column)).alias("code"),
        nw.lit(column.setting).alias("setting"),
    )


def coded_events(tables: Mapping[str, nw.LazyFrame | None], systems: Iterable[str]) -> nw.LazyFrame | None:
    """Every coded event of the given systems, from whichever tables are present."""
    wanted = set(systems)
    parts = [p for c in CODED_COLUMNS if c.system.name in wanted and (p := _events_of(c, tables)) is not None]
    return nw.concat(parts, how="vertical") if parts else None


def codelist_frame(engine: Engine, lists: Iterable[tuple[str, bool, Codelist]]) -> nw.LazyFrame:
    """(definition, resolved, system, code, length) for every code of every list."""
    rows: dict[str, list] = {"definition": [], "resolved": [], "system": [], "code": [], "length": []}
    for definition, resolved, codelist in lists:
        for code in sorted(codelist.codes):
            rows["definition"].append(definition)
            rows["resolved"].append(resolved)
            rows["system"].append(codelist.system.name)
            rows["code"].append(code)
            rows["length"].append(len(code))
    schema = pa.schema(
        [
            ("definition", pa.string()),
            ("resolved", pa.bool_()),
            ("system", pa.string()),
            ("code", pa.string()),
            ("length", pa.int64()),
        ]
    )
    return engine.frame(pa.table(rows, schema=schema))


def match(events: nw.LazyFrame, codes: nw.LazyFrame, prefix_lengths: Mapping[str, list[int]]) -> nw.LazyFrame:
    """Events joined to the lists they match: (person_id, date, setting, definition, resolved)."""
    keep = ["person_id", "date", "setting", "definition", "resolved"]
    exact_systems = [s for s in ("snomed", "dmd") if s not in prefix_lengths]
    parts = [
        events.filter(nw.col("system").is_in(exact_systems))
        .join(codes.select("system", "code", "definition", "resolved"), on=["system", "code"], how="inner")
        .select(keep)
    ]
    for system, lengths in prefix_lengths.items():
        listed = codes.filter(nw.col("system") == system)
        for length in lengths:
            prefixed = events.filter((nw.col("system") == system) & (nw.col("code").str.len_chars() >= length))
            prefixed = prefixed.with_columns(nw.col("code").str.slice(0, length).alias("code"))
            same_length = listed.filter(nw.col("length") == length).select("code", "definition", "resolved")
            parts.append(prefixed.join(same_length, on="code", how="inner").select(keep))
    return nw.concat(parts, how="vertical").unique()
