"""The segment and segment_transition stages.

``segment``: one row per person in the population at each as_of, with the Bridges to Health segment, one
boolean column per subsegment, the count of active long-term conditions, the Cambridge Multimorbidity Score
(computed once, by the risk stage), the need tier and band, and a licensed ACG Patient Need Group if supplied.

``segment_transition``: how people moved between segments from one as_of to the next, with ``died``, ``left``
(de-registered, alive) and ``joined`` (born or newly registered) as states, so that each year's flows add up
to the populations at both ends.
"""

from __future__ import annotations

from collections.abc import Mapping

import narwhals as nw
import pyarrow as pa

from openphm.codes import REGISTER_KINDS
from openphm.pipeline import RunContext, required, stage
from openphm.registers.definitions import definitions
from openphm.segments.assign import KEYS, catalogue, wide_frame
from openphm.segments.rules import Rules, load_rules
from openphm.tables import SEGMENT, SEGMENT_TRANSITION

DIED, LEFT, JOINED = "died", "left", "joined"


def run_rules(context: RunContext) -> Rules:
    """The run's rules: the run option ``segment_rules`` (a file) or the package default."""
    return load_rules(context.options.segment_rules)


@stage(
    "segment",
    inputs=("population", "register", "measure", "person", "risk", "activity"),
    outputs=(SEGMENT,),
    facts=("segment_facts",),
    per_person=True,
    same_facts=True,
    per_snapshot=True,
)
def segment(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> Mapping[str, nw.LazyFrame]:
    """Segment, subsegment flags, condition count, CMS, need tier and band per person in the population."""
    rules = run_rules(context)
    chosen = definitions(context, REGISTER_KINDS)
    subsegments = catalogue(rules, chosen)
    wide, env = wide_frame(tables, rules, subsegments, {d.id for d in chosen}, context.as_of, context.engine.frame)
    person = required(tables, "person")
    acg_png = (
        nw.col("acg_png").cast(nw.Int64)
        if "acg_png" in person.collect_schema().names()
        else nw.lit(None, dtype=nw.Int64).alias("acg_png")
    )
    cms = nw.col("risk__cms") if "risk__cms" in env.columns else env.null("risk.cms")
    out = wide.join(person.select("person_id", acg_png), on="person_id", how="left").select(
        *KEYS,
        "segment",
        *subsegments,
        "condition_count",
        cms.cast(nw.Float64).alias("cms"),
        "need_tier",
        "need_band",
        "acg_png",
    )
    missing = sorted(env.missing)
    facts = context.engine.frame(
        pa.table(
            {
                "item": pa.array(missing, pa.string()),
                "metric": pa.array(["not_available"] * len(missing), pa.string()),
                "value": pa.array([1.0] * len(missing), pa.float64()),
            }
        )
    )
    return {"segment": out, "segment_facts": facts}


@stage("segment_transition", inputs=("population", "segment"), outputs=(SEGMENT_TRANSITION,))
def segment_transition(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> Mapping[str, nw.LazyFrame]:
    """People by segment at one as_of and by segment, death, departure or arrival at the next."""
    population, segments = required(tables, "population"), required(tables, "segment")
    dates = sorted(context.as_of)
    pairs = context.engine.frame(
        pa.table({"from_as_of": pa.array(dates[:-1], pa.date32()), "to_as_of": pa.array(dates[1:], pa.date32())})
    )
    placed = segments.select(*KEYS, "segment")
    origin = (
        population.filter(nw.col("in_population"))
        .select(*KEYS)
        .join(placed, on=KEYS, how="left")
        .join(pairs, left_on="as_of", right_on="from_as_of", how="inner")
        .select("person_id", nw.col("as_of").alias("from_as_of"), "to_as_of", nw.col("segment").alias("from_segment"))
    )
    state = (
        nw.when(nw.col("in_population"))
        .then(nw.col("segment"))
        .when(~nw.col("alive"))
        .then(nw.lit(DIED))
        .otherwise(nw.lit(LEFT))
    )
    destination = (
        population.select(*KEYS, "alive", "in_population")
        .join(placed, on=KEYS, how="left")
        .join(pairs, left_on="as_of", right_on="to_as_of", how="inner")
        .select(
            "person_id", "from_as_of", nw.col("as_of").alias("to_as_of"), "in_population", state.alias("to_segment")
        )
    )
    pair_keys = ["person_id", "from_as_of", "to_as_of"]
    leaving = origin.join(destination.drop("in_population"), on=pair_keys, how="inner")
    joining = (
        destination.filter(nw.col("in_population"))
        .join(origin.select(pair_keys), on=pair_keys, how="anti")
        .select(*pair_keys, nw.lit(JOINED).alias("from_segment"), "to_segment")
    )
    flows = (
        nw.concat([leaving.select(*pair_keys, "from_segment", "to_segment"), joining], how="vertical")
        .group_by("from_as_of", "to_as_of", "from_segment", "to_segment")
        .agg(nw.len().cast(nw.Int64).alias("people"))
        .select(*SEGMENT_TRANSITION.names)
    )
    return {"segment_transition": flows}
