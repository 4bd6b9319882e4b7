"""The analytics stage: aggregates, inequalities and forecasts (tables `agg_*`), built once per run.

Every upstream table except `population` is optional: an absent input leaves the columns it would fill null and
the tables it alone feeds empty (never zeros), and the run log names it. Counts are exact; disclosure control
is applied when a table leaves the store (:mod:`openphm.analytics.published`).
"""

from __future__ import annotations

from collections.abc import Mapping

import narwhals as nw
import pyarrow as pa

from openphm.analytics import aggregates, forecast, inequalities, monthly, transitions
from openphm.analytics.settings import load_settings
from openphm.codes import REGISTER_KINDS
from openphm.engine import Engine
from openphm.pipeline import RunContext, required, stage
from openphm.registers.definitions import definitions
from openphm.tables import AGGREGATES

OPTIONAL = ("practice", "segment", "activity", "register", "cohort_member")
EVENTS = monthly.SOURCES
"""Event tables read only for the monthly series (their absence is the absence of its measures, not noted)."""
FACTS = "analytics_facts"


@stage("analytics", inputs=("population",), optional_inputs=(*OPTIONAL, *EVENTS), outputs=AGGREGATES, facts=(FACTS,))
def analytics(tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> Mapping[str, nw.LazyFrame]:
    """Aggregates by geography and dimension, standardised rates and inequality indices, 5-year projections."""
    population = required(tables, "population")
    engine = context.engine
    settings = load_settings()
    segment, activity, register = tables["segment"], tables["activity"], tables["register"]
    names = engine.persist(aggregates.area_names(engine, tables["practice"]))
    residents = aggregates.residents(population)
    persons = aggregates.people(residents, segment, activity)
    cube = engine.persist(aggregates.micro_cube(persons, activity is not None))
    out: dict[str, nw.LazyFrame] = {
        "agg_population": aggregates.population_aggregates(
            engine, cube, names, segment is not None, activity is not None
        )
    }

    if register is None:
        out["agg_register"] = engine.frame(aggregates.REGISTER_SCHEMA.empty_table())
    else:
        kinds = _definitions(context, REGISTER_KINDS)
        out["agg_register"] = aggregates.register_aggregates(engine, residents, register, kinds, names)

    members = tables["cohort_member"]
    out["agg_cohort"] = (
        engine.frame(aggregates.COHORT_SCHEMA.empty_table())
        if members is None
        else aggregates.cohort_aggregates(engine, residents, members, names)
    )

    steps = transitions.pairs(engine, context.as_of)
    moves = None
    if segment is None or steps is None:
        out["agg_transition"] = engine.frame(transitions.TRANSITION_SCHEMA.empty_table())
    else:
        moves = engine.persist(transitions.transition_cube(engine, population, segment, steps))
        out["agg_transition"] = transitions.transition_aggregates(moves, names)

    conditions = _definitions(context, ("condition",), segmented_only=True)
    sums = inequalities.strata(
        engine, cube, residents, register, conditions, settings, segment is not None, activity is not None
    )
    rates = inequalities.standardised_rates(None if sums is None else _collect(sums), settings)
    out["agg_inequality"] = _with_names(engine, rates, names, inequalities.INEQUALITY_SCHEMA)
    indices = inequalities.inequality_indices(rates, settings)
    out["agg_inequality_index"] = _with_names(engine, indices, names, inequalities.INDEX_SCHEMA)

    projection = forecast.EMPTY
    if moves is not None:
        base = max(context.as_of)
        start, counts = forecast.inputs(engine, cube, moves, base, settings, activity is not None)
        projection = forecast.forecast_table(
            start, counts, base, len(context.as_of) - 1, settings, activity is not None
        )
    out["agg_forecast"] = _with_names(engine, projection, names, forecast.FORECAST_SCHEMA)
    out["agg_monthly"] = monthly.monthly_aggregates(engine, tables, residents, segment, names, context.as_of)

    absent = [t for t in OPTIONAL if tables[t] is None]
    out[FACTS] = engine.frame(
        pa.table(
            {
                "item": pa.array([f"input:{t}" for t in absent], pa.string()),
                "metric": pa.array(["absent"] * len(absent), pa.string()),
                "value": pa.array([1.0] * len(absent), pa.float64()),
            }
        )
    )
    return out


def _definitions(context: RunContext, kinds: tuple[str, ...], *, segmented_only: bool = False) -> nw.LazyFrame:
    """(definition, kind) of the run's definitions of ``kinds``.

    ``segmented_only`` keeps the condition registers that place people in a Bridges to Health subsegment:
    the registers whose inequalities an analyst compares. The eFI deficit lists, which exist to feed the
    frailty index, are left out of the standardised rates (they stay in ``agg_register``).
    """
    chosen = [d for d in definitions(context, kinds) if d.segment is not None or not segmented_only]
    return context.engine.frame(
        pa.table(
            {
                "definition": pa.array([d.id for d in chosen], pa.string()),
                "kind": pa.array([d.kind for d in chosen], pa.string()),
            }
        )
    )


def _collect(frame: nw.LazyFrame) -> pa.Table:
    """A small aggregate as an Arrow table in a fixed row order, so that the statistics are engine-independent."""
    table = nw.to_native(frame.collect(backend="pyarrow"))
    return table.sort_by([(name, "ascending") for name in table.column_names])


def _with_names(engine: Engine, table: pa.Table, names: nw.LazyFrame, schema: pa.Schema) -> nw.LazyFrame:
    """A table computed in Python (aggregates only) back into the engine, with area names."""
    frame = engine.frame(table.select([n for n in schema.names if n != "area_name"]))
    return frame.join(names, on=["level", "area_code"], how="left").select(*schema.names)
