"""What a stage is: a named function from declared input tables to declared output tables.

A stage never opens files, never collects the population into Python and never learns which engine
runs it: it receives narwhals LazyFrames and returns LazyFrames. Declaring inputs and outputs lets the
runner order stages, check that every table a stage needs exists, check every table it writes against its
declared columns, and time and count each one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

import narwhals as nw

from openphm.engine import Engine
from openphm.errors import PipelineError
from openphm.options import RunOptions
from openphm.pipeline.schema import Table


@dataclass(frozen=True)
class RunContext:
    """The parameters of one pipeline run that every stage may read."""

    as_of: tuple[date, ...]
    """Snapshot dates; stages that describe a person 'as at' a date produce one row per date."""
    purpose: str
    run_id: str
    engine: Engine
    """For :meth:`Engine.frame` (small parameter tables) and :meth:`Engine.persist` (temporary
    materialisation of an intermediate read several times) only; stages never read or write tables through it."""
    options: RunOptions = field(default_factory=RunOptions)
    """The user's choices for the run (their own code lists, unit costs, rules...)."""


def required(tables: Mapping[str, nw.LazyFrame | None], name: str) -> nw.LazyFrame:
    """An input the stage cannot run without: a clear error, not an assert, when a caller passes none.

    The runner already refuses to run a stage whose declared inputs the store lacks; this guards a stage
    called directly (a test, a notebook) with a missing table.
    """
    frame = tables.get(name)
    if frame is None:
        raise PipelineError(f"table '{name}' is required but was not given")
    return frame


StageFunction = Callable[[Mapping[str, nw.LazyFrame | None], RunContext], Mapping[str, nw.LazyFrame]]


@dataclass(frozen=True)
class Stage:
    """A declared step of the pipeline."""

    name: str
    inputs: tuple[str, ...]
    tables: tuple[Table, ...]
    """The declared tables it writes (:mod:`openphm.pipeline.schema`): the runner checks each against them."""
    function: StageFunction
    optional_inputs: tuple[str, ...] = ()
    """Tables used when present; the function receives None for an absent one and must say so in its output."""
    description: str = ""
    facts: tuple[str, ...] = ()
    """Outputs that are facts for the run log, not store tables: rows of (item, metric, value)."""
    per_person: bool = False
    """A person's output rows depend only on that person's input rows, and facts are counts (unless
    ``same_facts``): the runner may run the stage on slices of people and append the results (see
    :mod:`openphm.pipeline.slices`)."""
    same_facts: bool = False
    """The facts describe the run, not the people (say, a table the rules need is absent): every slice gives
    the same facts, so a sliced run keeps one copy instead of summing them."""
    per_snapshot: bool = False
    """Every output table has an ``as_of`` column, and its rows at an as_of depend only on the source tables and
    on the run tables' rows at that as_of: a refresh runs the stage on the latest as_of alone and keeps the
    earlier rows of a previous run (:mod:`openphm.pipeline.refresh`)."""

    @property
    def outputs(self) -> tuple[str, ...]:
        """The names of the tables it writes."""
        return tuple(t.name for t in self.tables)

    def __call__(self, tables: Mapping[str, nw.LazyFrame | None], context: RunContext) -> Mapping[str, nw.LazyFrame]:
        """Run the stage's function: a test or a notebook calls a stage like the function it was made from."""
        return self.function(tables, context)


def stage(
    name: str,
    *,
    inputs: tuple[str, ...],
    outputs: tuple[Table, ...],
    optional_inputs: tuple[str, ...] = (),
    facts: tuple[str, ...] = (),
    per_person: bool = False,
    same_facts: bool = False,
    per_snapshot: bool = False,
) -> Callable[[StageFunction], Stage]:
    """Make the decorated function a :class:`Stage` (it stays callable); :mod:`openphm.stages` lists it.

    Nothing is registered: reloading a stage module in a notebook builds a new Stage and breaks nothing.
    """

    def build(function: StageFunction) -> Stage:
        doc = (function.__doc__ or "").strip().splitlines()
        return Stage(
            name,
            inputs,
            outputs,
            function,
            optional_inputs,
            doc[0] if doc else "",
            facts,
            per_person,
            same_facts,
            per_snapshot,
        )

    return build
