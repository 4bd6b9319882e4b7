"""Which hospital spells a diagnosis rule set (such as the ACSC list) accepts, as joins on prefixes.

A rule set is a table of (condition, rule, system, code). A record counts for a condition when one of its
diagnoses matches an including code in the right position (``primary``: position 1; ``any``: any
position), every ``with_secondary`` code the condition has is matched by a secondary diagnosis, no
``without_secondary`` code is, and none of its procedures matches a ``without_procedure`` code (any
position). Codes match by prefix, done as equi-joins on each prefix length the set uses, as registers do.

The record is a hospital provider spell (:mod:`openphm.spells`) with the diagnoses and procedures of all its
episodes: its primary diagnosis is the primary diagnosis of its first episode, as the NHS ACSC indicators take
it (NHS Outcomes Framework 2.3.i), and every other diagnosis of any of its episodes is a secondary one. So a
spell whose second episode has an ACSC primary diagnosis is not an ACSC admission, a spell of two ACSC
episodes is one, and a secondary (or ``any``) code recorded in a later episode counts.
"""

from __future__ import annotations

from collections.abc import Iterable

import narwhals as nw
import pyarrow as pa

from openphm.cohorts.definitions import RuleSetRow
from openphm.engine import Engine, distinct
from openphm.spells import spell_of_episode

LATER_EPISODE = 100
"""Added to the positions of a spell's later episodes' diagnoses: none of them is the spell's primary (1)."""


def _codes(engine: Engine, rows: Iterable[RuleSetRow]) -> nw.LazyFrame:
    rows = sorted(set(rows), key=lambda r: (r.condition, r.kind, r.code))
    return engine.frame(
        pa.table(
            {
                "condition": pa.array([r.condition for r in rows], pa.string()),
                "kind": pa.array([r.kind for r in rows], pa.string()),
                "prefix": pa.array([r.code for r in rows], pa.string()),
                "length": pa.array([len(r.code) for r in rows], pa.int64()),
            }
        )
    )


def _prefix_join(records: nw.LazyFrame, codes: nw.LazyFrame, lengths: Iterable[int]) -> nw.LazyFrame:
    """Records (with a normalised ``code``) joined to every listed code that is a prefix of theirs."""
    parts = []
    for length in sorted(set(lengths)):
        prefixed = records.filter(nw.col("code").str.len_chars() >= length).with_columns(
            nw.col("code").str.slice(0, length).alias("prefix")
        )
        parts.append(
            prefixed.join(
                codes.filter(nw.col("length") == length).select("prefix", "condition", "kind"), on="prefix", how="inner"
            )
        )
    return nw.concat(parts, how="vertical")


def qualifying_spells(
    rows: tuple[RuleSetRow, ...],
    episodes: nw.LazyFrame,
    diagnoses: nw.LazyFrame,
    procedures: nw.LazyFrame | None,
    engine: Engine,
) -> nw.LazyFrame:
    """(spell_key, condition) for every spell the rule set accepts, once per condition (module docs)."""
    spell = spell_of_episode(episodes)
    position = (
        nw.when(nw.col("episode_order") == 1)
        .then(nw.col("position"))
        .otherwise(nw.col("position") + LATER_EPISODE)
        .cast(nw.Int64)
    )
    spell_diagnoses = diagnoses.join(spell, on="episode_id", how="inner").select(
        nw.col("spell_key").alias("episode_id"), position.alias("position"), "icd10_code"
    )
    spell_procedures = (
        None
        if procedures is None
        else procedures.join(spell, on="episode_id", how="inner").select(
            nw.col("spell_key").alias("episode_id"), "opcs4_code"
        )
    )
    accepted = qualifying_episodes(rows, spell_diagnoses, spell_procedures, engine)
    return accepted.select(nw.col("episode_id").alias("spell_key"), "condition")


def qualifying_episodes(
    rows: tuple[RuleSetRow, ...],
    diagnoses: nw.LazyFrame,
    procedures: nw.LazyFrame | None,
    engine: Engine,
) -> nw.LazyFrame:
    """(episode_id, condition) for every record the rule set accepts, once per condition.

    ``episode_id`` keys the records: an episode, or a spell with its episodes' codes (:func:`qualifying_spells`).
    """
    diagnosis_rows = [r for r in rows if r.system == "icd10"]
    procedure_rows = [r for r in rows if r.kind == "without_procedure"]
    coded = diagnoses.filter(~nw.col("icd10_code").is_null()).select(
        "episode_id", "position", nw.col("icd10_code").alias("code")
    )
    matched = _prefix_join(coded, _codes(engine, diagnosis_rows), (len(r.code) for r in diagnosis_rows))
    primary = nw.col("position") == 1
    kind = nw.col("kind")
    flags = (
        matched.with_columns(
            (((kind == "primary") & primary) | (kind == "any")).cast(nw.Int64).alias("included"),
            ((kind == "with_secondary") & ~primary).cast(nw.Int64).alias("with_secondary"),
            ((kind == "without_secondary") & ~primary).cast(nw.Int64).alias("without_secondary"),
        )
        .group_by("episode_id", "condition")
        .agg(nw.col("included").max(), nw.col("with_secondary").max(), nw.col("without_secondary").max())
    )
    needing = sorted({r.condition for r in rows if r.kind == "with_secondary"})
    secondary_met = (nw.col("with_secondary") == 1) | ~nw.col("condition").is_in(needing) if needing else nw.lit(True)
    accepted = flags.filter((nw.col("included") == 1) & secondary_met & (nw.col("without_secondary") == 0)).select(
        "episode_id", "condition"
    )
    if procedure_rows and procedures is not None:
        operated = procedures.filter(~nw.col("opcs4_code").is_null()).select(
            "episode_id", nw.col("opcs4_code").alias("code")
        )
        barred = (
            _prefix_join(operated, _codes(engine, procedure_rows), (len(r.code) for r in procedure_rows))
            .select("episode_id", "condition")
            .pipe(distinct)
            .with_columns(nw.lit(True).alias("barred"))
        )
        accepted = (
            accepted.join(barred, on=["episode_id", "condition"], how="left")
            .filter(nw.col("barred").is_null())
            .select("episode_id", "condition")
        )
    return accepted.pipe(distinct)
