"""Hospital provider spells: the stays that admissions, bed days and their costs count, built from episodes.

``apc_episode`` holds consultant episodes, and one stay in hospital can hold several (a change of consultant
starts a new episode). Counting episodes as admissions over-counts every such stay, so every stage that counts
admissions counts spells: the NHS Data Model and Dictionary's *Hospital Provider Spell*, "the total continuous
stay of a patient using a hospital bed on premises controlled by a health care provider". Two places share it:

- ingest (:func:`with_spell_ids`) stores every episode with a ``spell_id``: the supplied one (SUS+/HES
  ``SUSSPELLID``, a provider's spell number) where given, else one derived by the rule below;
- the stages (:func:`spells`, :func:`spell_of_episode`) read the stored episodes as one row per spell.

The derivation, for episodes without a supplied ``spell_id``: a person's episodes at one provider are ordered by
admission date, then episode id; an episode continues the spell of the episode before it when it starts on or
before that episode's discharge date (contiguous: admitted on the day the other ended, or during it) and that
episode did not end with a discharge (``discharge_method`` 1-5: discharged, or died). A blank discharge date
continues the spell only for an episode admitted the same day: HES repeats the spell's admission date on every
episode and records the discharge date on its last only, while an episode without a discharge date followed by
a later one is unfinished and must not swallow the person's later stays. Everything else starts a new spell, so
a transfer to another provider (a different ``provider_code``) is a new spell there, as the definition says; a
missing provider counts as one unknown provider. Everything is written once in narwhals: window functions
ordered by date and episode id, the same on every engine.
"""

from __future__ import annotations

import narwhals as nw

DISCHARGED = ("1", "2", "3", "4", "5")
"""HES/SUS+ discharge methods that end a spell (NHS Data Dictionary DISCHARGE METHOD: 1-3 discharged, 4 died,
5 stillbirth); 8 (not applicable: still in hospital) and 9 (not known) leave contiguity to decide."""
DERIVED_PREFIX = "derived:"
"""A derived spell_id is this and the first episode id of its spell, so it never equals a supplied one."""
ORDER = ["admission_date", "episode_id"]
"""The order of episodes within a person and provider, and within a spell."""


def with_spell_ids(episodes: nw.LazyFrame) -> nw.LazyFrame:
    """The episodes with ``spell_id`` filled: the supplied value where there is one, else derived (module docs).

    A supplied spell_id wins, and the derivation runs over the person's episodes without one only, so a
    supplied spell never absorbs an episode the source left unassigned.
    """
    names = episodes.collect_schema().names()
    supplied = nw.col("spell_id") if "spell_id" in names else nw.lit(None, nw.String)
    method = nw.col("discharge_method") if "discharge_method" in names else nw.lit(None, nw.String)
    frame = episodes.with_columns(supplied.alias("spell_id"), method.alias("_method"))
    given = frame.filter(~nw.col("spell_id").is_null())
    blank = frame.filter(nw.col("spell_id").is_null())

    stay = ["person_id", "provider_code"]
    previous_end = nw.col("discharge_date").shift(1).over(*stay, order_by=ORDER)
    previous_start = nw.col("admission_date").shift(1).over(*stay, order_by=ORDER)
    previous_discharged = nw.col("_method").shift(1).over(*stay, order_by=ORDER).is_in(DISCHARGED).fill_null(False)
    first = nw.col("episode_id").shift(1).over(*stay, order_by=ORDER).is_null()
    continues = (
        nw.when(previous_end.is_null())
        .then(nw.col("admission_date") == previous_start)
        .otherwise(nw.col("admission_date") <= previous_end)
    )
    new_spell = first | ~continues.fill_null(False) | previous_discharged
    derived = (
        blank.with_columns(new_spell.cast(nw.Int64).alias("_new"))
        .with_columns(nw.col("_new").cum_sum().over(*stay, order_by=ORDER).cast(nw.Int64).alias("_spell"))
        .with_columns(
            nw.concat_str([nw.lit(DERIVED_PREFIX), nw.col("episode_id").min().over(*stay, "_spell")]).alias("spell_id")
        )
    )
    columns = [*names, *([] if "spell_id" in names else ["spell_id"])]
    return nw.concat([given.select(*columns), derived.select(*columns)], how="vertical")


def ranked(episodes: nw.LazyFrame) -> nw.LazyFrame:
    """Stored episodes with ``episode_order`` (1 = the spell's first) and ``spell_key`` (its first episode id).

    A spell is a person's: the key is unique across people, since episode ids are (the contract's key). A store
    ingested before spells were stored has no spell_id, and gets it derived here by the same rule. Episodes that
    already carry both columns are returned as they are, so a stage that reads spells several times (the
    series' admissions and their ACSC diagnoses, a cohort's admissions rules) materialises this once and
    passes it on, rather than ordering every episode by window functions for each use.
    """
    if {"episode_order", "spell_key"} <= set(episodes.collect_schema().names()):
        return episodes
    if "spell_id" not in episodes.collect_schema().names():
        episodes = with_spell_ids(episodes)
    spell = ["person_id", "spell_id"]
    order = nw.col("episode_id").cum_count().over(*spell, order_by=ORDER).cast(nw.Int64)
    ordered = episodes.with_columns(order.alias("episode_order"))
    first = nw.when(nw.col("episode_order") == 1).then(nw.col("episode_id")).max().over(*spell)
    return ordered.with_columns(first.alias("spell_key"))


def spell_of_episode(episodes: nw.LazyFrame) -> nw.LazyFrame:
    """(episode_id, spell_key, episode_order) of every episode: maps diagnoses and procedures onto spells."""
    return ranked(episodes).select("episode_id", "spell_key", "episode_order")


def spells(episodes: nw.LazyFrame) -> nw.LazyFrame:
    """One row per spell: what every admission count, bed day and admission cost is built from.

    ``spell_key`` (the first episode's id), ``person_id``, ``admission_date`` (the first episode's),
    ``discharge_date`` (the latest an episode records; null while none has one: still in hospital),
    ``admission_method`` and ``provider_code`` (the first episode's: the spell is an emergency admission when
    it began as one), ``cost`` (the sum of the recorded episode costs, null when none has one),
    ``costed_episodes`` (episodes with a recorded cost) and ``episodes``.
    """
    stays = ranked(episodes)
    first = stays.filter(nw.col("episode_order") == 1).select(
        "spell_key", "person_id", "admission_date", "admission_method", "provider_code"
    )
    totals = stays.group_by("spell_key").agg(
        nw.col("discharge_date").max(),
        nw.col("cost").sum().alias("_cost"),
        nw.col("cost").count().alias("costed_episodes"),
        nw.len().cast(nw.Int64).alias("episodes"),
    )
    return first.join(totals, on="spell_key", how="inner").select(
        "spell_key",
        "person_id",
        "admission_date",
        "discharge_date",
        "admission_method",
        "provider_code",
        nw.when(nw.col("costed_episodes") > 0).then(nw.col("_cost")).alias("cost"),
        nw.col("costed_episodes").cast(nw.Int64),
        "episodes",
    )
