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
        nw.col(column.column).alias("code"),  # stored in canonical form by ingest
        nw.lit(column.setting).alias("setting"),
    )


def events_by_system(tables: Mapping[str, nw.LazyFrame | None], systems: Iterable[str]) -> dict[str, nw.LazyFrame]:
    """Every coded event of the given systems, from whichever tables are present, one frame per system.

    Kept apart so that matching a system's lists reads only the tables coded in it: filtering one
    concatenation of every setting by system would scan the largest tables again for every prefix length.
    """
    parts: dict[str, list[nw.LazyFrame]] = {}
    for column in CODED_COLUMNS:
        if column.system.name in set(systems) and (part := _events_of(column, tables)) is not None:
            parts.setdefault(column.system.name, []).append(part)
    return {system: nw.concat(frames, how="vertical") for system, frames in parts.items()}


def coded_events(tables: Mapping[str, nw.LazyFrame | None], systems: Iterable[str]) -> nw.LazyFrame | None:
    """Every coded event of the given systems, from whichever tables are present."""
    parts = list(events_by_system(tables, systems).values())
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


def match(
    events: Mapping[str, nw.LazyFrame], codes: nw.LazyFrame, prefix_lengths: Mapping[str, list[int]]
) -> nw.LazyFrame | None:
    """Events (by system, from :func:`events_by_system`) joined to the lists they match.

    Rows are (person_id, date, setting, definition, resolved); None when no event is in a listed system. An
    event that matches a definition by two of its codes (or two prefix lengths) appears once per match:
    every caller summarises by person, definition and date, so removing the repeats here would only cost a
    pass over every matched event.
    """
    keep = ["person_id", "date", "setting", "definition", "resolved"]
    parts = []
    for system, frame in events.items():
        listed = codes.filter(nw.col("system") == system)
        if system not in prefix_lengths:
            parts.append(frame.join(listed.select("code", "definition", "resolved"), on="code", how="inner"))
            continue
        for length in prefix_lengths[system]:
            prefixed = frame.filter(nw.col("code").str.len_chars() >= length).with_columns(
                nw.col("code").str.slice(0, length).alias("code")
            )
            same_length = listed.filter(nw.col("length") == length).select("code", "definition", "resolved")
            parts.append(prefixed.join(same_length, on="code", how="inner"))
    return nw.concat([p.select(keep) for p in parts], how="vertical") if parts else None
