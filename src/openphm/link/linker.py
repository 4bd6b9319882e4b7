"""Link two cleaned extracts: equal valid NHS numbers first, then Splink on what is left, then one key per person.

The deterministic step is exact and cheap, so it goes first and takes its records out of the model: pairs
that share a valid NHS number are certain (Modulus 11 catches every single-digit error and every adjacent
transposition) and would only distort the model's estimate of how often true matches disagree. Splink's
Fellegi-Sunter model then scores the remaining left-right pairs that meet a blocking rule, with u estimated
by random sampling and m by expectation maximisation (no labelled pairs are needed), and pairs at or above
the threshold are clustered into people (connected components, Splink's own clustering). Records of one
source that share a valid NHS number are joined in that clustering too, so a person key never splits a
number. Splink runs on DuckDB (in process) or on Spark for extracts beyond one machine.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from openphm.errors import InputError, OpenPHMError
from openphm.link.clean import ID, Source, read_source
from openphm.link.settings import LinkSettings, NameSettings

if TYPE_CHECKING:
    from splink import Linker

ENGINES = ("duckdb", "spark")
SPLINK_COLUMNS = (
    ID,
    "given_name",
    "family_name",
    "given_soundex",
    "family_soundex",
    "date_of_birth",
    "birth_year",
    "sex",
    "postcode",
    "postcode_sector",
    "postcode_district",
)
"""What Splink sees: no NHS number (handled before and after it), no deprivation (reported, not compared)."""
KEY = "person_key"
SWAP_SIMILARITY = 0.88
"""Jaro-Winkler similarity at which each name counts as equal to the other record's other name."""
ALIASES = {"source_left": "left", "source_right": "right"}
"""Splink's names of the two inputs: they become SQL table names, and ``left`` is an SQL keyword."""
LINK_MAP = ("source", ID, KEY, "method", "match_probability")


class LinkError(OpenPHMError):
    """Linkage cannot run here: Splink (the ``link`` extra) or the engine's dependencies are missing."""


@dataclass(frozen=True)
class Level:
    """One level of one comparison of the trained model, for the report."""

    comparison: str
    label: str
    m: float | None
    u: float | None

    @property
    def weight(self) -> float | None:
        """The level's match weight log2(m/u): the evidence, in bits, that agreeing this way adds."""
        if not self.m or not self.u:
            return None
        return math.log2(self.m / self.u)


@dataclass(frozen=True)
class LinkResult:
    link_map: pl.DataFrame
    """One row per input record: ``source``, ``record_id``, ``person_key``, ``method``, ``match_probability``."""
    pairs: pl.DataFrame
    """Every left-right pair Splink scored: ``record_id_l``, ``record_id_r``, ``match_weight``,
    ``match_probability``, ``nhs_conflict`` and ``linked`` (at or above the threshold, no conflict)."""
    left: Source
    right: Source
    settings: LinkSettings
    engine: str
    levels: tuple[Level, ...]
    prior: float | None
    skipped_em_rules: tuple[tuple[str, ...], ...]
    """Training rules that found no pair of records (their m estimates are missing)."""
    seconds: float

    @property
    def records(self) -> int:
        return self.left.rows + self.right.rows


def threshold_weight(probability: float) -> float:
    """The match weight (bits) of a match probability: log2 of its odds."""
    return math.log2(probability / (1 - probability))


def link(
    left: Path,
    right: Path,
    settings: LinkSettings,
    engine: str = "duckdb",
    progress: Callable[[str], None] = lambda _: None,
) -> LinkResult:
    """Read, clean and link two extracts (see the module's docstring); nothing is written."""
    if engine not in ENGINES:
        raise InputError(f"phm link runs on {' or '.join(ENGINES)}, not on '{engine}'")
    _require_splink()
    started = time.perf_counter()
    progress("reading and cleaning")
    sources = read_source(left, "left"), read_source(right, "right")
    records = pl.concat(
        [s.frame.select(pl.lit(s.name).alias("source"), ID, "nhs_number") for s in sources], how="vertical"
    )
    both = (
        records.filter(pl.col("nhs_number").is_not_null())
        .group_by("nhs_number")
        .agg(pl.col("source").n_unique().alias("sources"))
        .filter(pl.col("sources") == 2)
        .select("nhs_number")
    )
    deterministic = records.join(both, on="nhs_number", how="semi")
    remaining = [s.frame.join(deterministic.filter(pl.col("source") == s.name), on=ID, how="anti") for s in sources]

    levels: tuple[Level, ...] = ()
    prior = None
    skipped: tuple[tuple[str, ...], ...] = ()
    pairs = _empty_pairs()
    if all(r.height for r in remaining):
        model = _Splink(remaining[0], remaining[1], settings, engine)
        progress("estimating the model (u by sampling, m by expectation maximisation)")
        prior = model.prior
        skipped = model.train()
        levels = model.levels()
        _check_trained(levels)
        progress("scoring pairs")
        pairs = model.score()
        progress("clustering")
        clusters = model.cluster(_edges(pairs, remaining))
    else:
        clusters = _clusters_without_model(remaining)

    link_map = _link_map(deterministic, clusters, pairs)
    return LinkResult(
        link_map, pairs, sources[0], sources[1], settings, engine, levels, prior, skipped, time.perf_counter() - started
    )


def _check_trained(levels: tuple[Level, ...]) -> None:
    """Stop when EM learnt nothing about exact agreement (each comparison's first level).

    That happens when the training pairs hold (almost) no true matches, for instance two extracts of
    different people: EM then describes chance agreement, and Splink would fill the gaps with default m
    values and link strangers who share a common name.
    """
    first: dict[str, Level] = {}
    for level in levels:
        first.setdefault(level.comparison, level)
    untrained = [name for name, level in first.items() if level.m is None]
    if untrained:
        raise LinkError(
            "the model could not be estimated: the training pairs show no exact agreement on "
            f"{', '.join(untrained)}; do the two extracts share people?"
        )


def _require_splink() -> None:
    try:
        import splink  # noqa: F401
    except ImportError:
        raise LinkError("phm link needs Splink: pip install 'openphm[link]'") from None


class _Splink:
    """One Splink linker over the records the deterministic step left, on DuckDB or Spark."""

    def __init__(self, left: pl.DataFrame, right: pl.DataFrame, settings: LinkSettings, engine: str) -> None:
        from splink import Linker, SettingsCreator, block_on

        logging.getLogger("splink").setLevel(logging.ERROR)  # its progress notes would drown the terminal
        self.settings = settings
        self.engine = engine
        self.nhs = {
            "left": left.select(ID, "nhs_number"),
            "right": right.select(ID, "nhs_number"),
        }
        self.prior = _prior(left, right, settings)
        creator = SettingsCreator(
            link_type="link_only",
            unique_id_column_name=ID,
            comparisons=_comparisons(settings, engine),
            blocking_rules_to_generate_predictions=[block_on(*rule) for rule in settings.blocking_rules],
            probability_two_random_records_match=self.prior,
            max_iterations=settings.training.em_max_iterations,
            retain_matching_columns=False,
            retain_intermediate_calculation_columns=False,
        )
        inputs = [self._table(frame.select(SPLINK_COLUMNS).to_arrow()) for frame in (left, right)]
        self.linker: Linker = Linker(
            inputs, creator, self._db_api(), set_up_basic_logging=False, input_table_aliases=list(ALIASES)
        )

    def _db_api(self) -> Any:
        if self.engine == "spark":
            from splink.backends.spark import SparkAPI

            self.spark = _spark_session()
            # Splink's default writes intermediate tables to the checkpoint folder, which a local session
            # has not got; persisting them in memory needs none and suits the sizes one machine links.
            return SparkAPI(spark_session=self.spark, break_lineage_method="persist")
        import duckdb
        from splink import DuckDBAPI

        self.duckdb = duckdb.connect()
        return DuckDBAPI(connection=self.duckdb)

    def _table(self, table: pa.Table) -> Any:
        """An input Splink accepts: an Arrow table on DuckDB, a Spark DataFrame on Spark."""
        if self.engine == "spark":
            return _spark_session().createDataFrame(table)
        return table

    def _polars(self, splink_frame: Any, columns: list[str]) -> pl.DataFrame:
        """A table Splink made, as Polars, through Arrow (no pandas)."""
        name = splink_frame.physical_name
        select = ", ".join(columns)
        if self.engine == "spark":
            return pl.from_arrow(self.spark.sql(f"select {select} from {name}").toArrow())  # type: ignore[return-value]
        return self.duckdb.sql(f"select {select} from {name}").pl()

    def train(self) -> tuple[tuple[str, ...], ...]:
        """Estimate u, then m by EM on each training rule; the rules that found no pair (skipped)."""
        from splink import block_on
        from splink.internals.exceptions import EMTrainingException

        training = self.settings.training
        self.linker.training.estimate_u_using_random_sampling(max_pairs=training.u_max_pairs, seed=training.seed)
        skipped = []
        for rule in training.em_rules:
            try:
                self.linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
            except EMTrainingException:  # no pair meets the rule: EM has nothing to learn from
                skipped.append(rule)
        if len(skipped) == len(training.em_rules):
            raise LinkError(
                "too few records to estimate the model: no pair of records meets any training rule "
                "(training.em_rules in the settings)"
            )
        return tuple(skipped)

    def levels(self) -> tuple[Level, ...]:
        model = self.linker.misc.save_model_to_json()
        return tuple(
            Level(
                comparison["output_column_name"],
                level["label_for_charts"],
                level.get("m_probability"),
                level.get("u_probability"),
            )
            for comparison in model["comparisons"]
            for level in comparison["comparison_levels"]
            if not level.get("is_null_level")
        )

    def score(self) -> pl.DataFrame:
        """Every blocked pair with its weight and probability, oriented left-right, NHS conflicts marked."""
        predictions = self.linker.inference.predict()
        columns = ["source_dataset_l", f"{ID}_l", f"{ID}_r", "match_weight", "match_probability"]
        raw = self._polars(predictions, columns)
        flipped = pl.col("source_dataset_l") == "source_right"
        pairs = raw.select(
            pl.when(flipped).then(pl.col(f"{ID}_r")).otherwise(pl.col(f"{ID}_l")).alias(f"{ID}_l"),
            pl.when(flipped).then(pl.col(f"{ID}_l")).otherwise(pl.col(f"{ID}_r")).alias(f"{ID}_r"),
            pl.col("match_weight").cast(pl.Float64),
            pl.col("match_probability").cast(pl.Float64),
        )
        pairs = pairs.join(self.nhs["left"].rename({ID: f"{ID}_l"}), on=f"{ID}_l", how="left").join(
            self.nhs["right"].rename({ID: f"{ID}_r", "nhs_number": "nhs_number_r"}), on=f"{ID}_r", how="left"
        )
        conflict = (
            pl.col("nhs_number").is_not_null()
            & pl.col("nhs_number_r").is_not_null()
            & (pl.col("nhs_number") != pl.col("nhs_number_r"))
        )
        keep_apart = conflict if self.settings.nhs_number_conflict == "keep_apart" else pl.lit(False)
        return pairs.select(
            f"{ID}_l",
            f"{ID}_r",
            "match_weight",
            "match_probability",
            conflict.alias("nhs_conflict"),
            ((pl.col("match_probability") >= self.settings.threshold) & ~keep_apart).alias("linked"),
        ).sort("match_weight", f"{ID}_l", f"{ID}_r", descending=[True, False, False])

    def cluster(self, edges: pl.DataFrame) -> pl.DataFrame:
        """``source``, ``record_id``, ``cluster``: Splink's connected components over ``edges``."""
        registered = self.linker.table_management.register_table_predict(self._table(edges.to_arrow()), overwrite=True)
        clusters = self.linker.clustering.cluster_pairwise_predictions_at_threshold(
            registered, threshold_match_probability=self.settings.threshold
        )
        return self._polars(clusters, ["cluster_id", "source_dataset", ID]).select(
            pl.col("source_dataset").replace_strict(ALIASES).alias("source"),
            ID,
            pl.col("cluster_id").cast(pl.String).alias("cluster"),
        )


def _spark_session() -> Any:
    from openphm.link.spark import session

    return session()


def _prior(left: pl.DataFrame, right: pl.DataFrame, settings: LinkSettings) -> float:
    """The prior match probability: pairs equal on the prior rule, over its assumed recall, over all pairs.

    Counted here (an equi-join) rather than by Splink so that a rule that finds no pair gives a small
    positive prior (as if one pair had) instead of zero, which would make every probability zero.
    """
    rule = list(settings.training.prior_rule)
    equal = left.select(rule).drop_nulls().join(right.select(rule).drop_nulls(), on=rule).height
    expected = max(equal, 1) / settings.training.prior_recall
    return min(expected / (left.height * right.height), 0.5)


def _comparisons(settings: LinkSettings, engine: str) -> list[Any]:
    """Splink comparisons from the settings; SQL of their own uses the engine's Jaro-Winkler function."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink.internals.dialects import SplinkDialect

    c = settings.comparisons
    similarity = SplinkDialect.from_string(engine).jaro_winkler_function_name

    def name(column: str, other: str, s: NameSettings) -> Any:
        levels = [cll.NullLevel(column), cll.ExactMatchLevel(column, term_frequency_adjustments=s.term_frequencies)]
        if s.swapped_names:  # crosswise alike, allowing a typing error in either name
            levels.append(
                cll.CustomLevel(
                    f"{similarity}({column}_l, {other}_r) >= {SWAP_SIMILARITY} "
                    f"AND {similarity}({other}_l, {column}_r) >= {SWAP_SIMILARITY}",
                    label_for_charts="Given and family names swapped",
                )
            )
        levels += [cll.JaroWinklerLevel(column, t) for t in s.jaro_winkler]
        return cl.CustomComparison([*levels, cll.ElseLevel()], output_column_name=column)

    dob = "date_of_birth"
    date_levels = [cll.NullLevel(dob), cll.ExactMatchLevel(dob)]
    if c.date_of_birth.damerau_levenshtein is not None:
        date_levels.append(cll.DamerauLevenshteinLevel(dob, c.date_of_birth.damerau_levenshtein))
    if c.date_of_birth.transposed_day_month:
        date_levels.append(
            cll.CustomLevel(
                f"substr({dob}_l, 1, 4) = substr({dob}_r, 1, 4) AND substr({dob}_l, 6, 2) = substr({dob}_r, 9, 2) "
                f"AND substr({dob}_l, 9, 2) = substr({dob}_r, 6, 2)",
                label_for_charts="Day and month transposed",
            )
        )
    date_levels += [
        cll.AbsoluteDateDifferenceLevel(dob, input_is_string=True, threshold=d.within, metric=d.unit)
        for d in c.date_of_birth.differences
    ]
    column = {"full": "postcode", "sector": "postcode_sector", "district": "postcode_district"}
    postcode_levels = [cll.NullLevel("postcode"), *(cll.ExactMatchLevel(column[lv]) for lv in c.postcode.levels)]
    comparisons = [
        name("given_name", "family_name", c.given_name),
        name("family_name", "given_name", c.family_name),
        cl.CustomComparison([*date_levels, cll.ElseLevel()], output_column_name=dob),
        cl.CustomComparison([*postcode_levels, cll.ElseLevel()], output_column_name="postcode"),
    ]
    if c.sex:
        comparisons.append(cl.ExactMatch("sex"))
    return comparisons


def _empty_pairs() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            f"{ID}_l": pl.String,
            f"{ID}_r": pl.String,
            "match_weight": pl.Float64,
            "match_probability": pl.Float64,
            "nhs_conflict": pl.Boolean,
            "linked": pl.Boolean,
        }
    )


def _edges(pairs: pl.DataFrame, remaining: list[pl.DataFrame]) -> pl.DataFrame:
    """The linked pairs, plus records of one source sharing a valid NHS number (probability 1)."""
    linked = pairs.filter("linked").select(
        pl.lit("source_left").alias("source_dataset_l"),
        f"{ID}_l",
        pl.lit("source_right").alias("source_dataset_r"),
        f"{ID}_r",
        "match_probability",
    )
    same_number = []
    for name, frame in zip(("left", "right"), remaining, strict=True):
        numbered = frame.filter(pl.col("nhs_number").is_not_null()).select("nhs_number", ID)
        first = numbered.group_by("nhs_number").agg(pl.col(ID).min().alias("first"))
        same_number.append(
            numbered.join(first, on="nhs_number")
            .filter(pl.col(ID) != pl.col("first"))
            .select(
                pl.lit(f"source_{name}").alias("source_dataset_l"),
                pl.col("first").alias(f"{ID}_l"),
                pl.lit(f"source_{name}").alias("source_dataset_r"),
                pl.col(ID).alias(f"{ID}_r"),
                pl.lit(1.0).alias("match_probability"),
            )
        )
    return pl.concat([linked, *same_number], how="vertical")


def _clusters_without_model(remaining: list[pl.DataFrame]) -> pl.DataFrame:
    """When one source has nothing left to link: each record alone, or with its NHS number's records."""
    return pl.concat(
        [
            frame.select(
                pl.lit(name).alias("source"),
                ID,
                pl.coalesce(pl.lit("nhs:") + pl.col("nhs_number"), pl.lit(f"{name}:") + pl.col(ID)).alias("cluster"),
            )
            for name, frame in zip(("left", "right"), remaining, strict=True)
        ],
        how="vertical",
    )


def _link_map(deterministic: pl.DataFrame, clusters: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """One row per record: an opaque person key (numbered in order of each person's first record, so it
    says nothing about an NHS number), how the record was linked and with what probability."""
    fixed = deterministic.select(
        "source",
        ID,
        (pl.lit("nhs:") + pl.col("nhs_number")).alias("cluster"),
        pl.lit("nhs_number").alias("method"),
        pl.lit(1.0).alias("match_probability"),
    )
    linked = pairs.filter("linked")
    own = (
        pl.concat(
            [
                linked.select(pl.lit("left").alias("source"), pl.col(f"{ID}_l").alias(ID), "match_probability"),
                linked.select(pl.lit("right").alias("source"), pl.col(f"{ID}_r").alias(ID), "match_probability"),
            ],
            how="vertical",
        )
        .group_by("source", ID)
        .agg(pl.col("match_probability").max().alias("own"))
    )
    modelled = (
        clusters.join(own, on=["source", ID], how="left")
        .with_columns(
            (pl.col("source").n_unique().over("cluster") == 2).alias("crosses"),
            pl.col("own").max().over("cluster").alias("best"),
        )
        .select(
            "source",
            ID,
            "cluster",
            pl.when("crosses").then(pl.lit("probabilistic")).otherwise(pl.lit("unlinked")).alias("method"),
            pl.when("crosses").then(pl.coalesce("own", "best")).alias("match_probability"),
        )
    )
    everything = pl.concat([fixed, modelled], how="vertical")
    order = (
        everything.group_by("cluster")
        .agg((pl.col("source") + pl.lit("\x00") + pl.col(ID)).min().alias("first"))
        .sort("first")
        .with_row_index("n", offset=1)
    )
    width = max(8, len(str(order.height)))
    keys = order.select("cluster", (pl.lit("P") + pl.col("n").cast(pl.String).str.zfill(width)).alias(KEY))
    return everything.join(keys, on="cluster").select(LINK_MAP).sort("source", ID)
