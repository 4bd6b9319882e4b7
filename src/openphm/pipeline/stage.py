"""What a stage is: a named function from declared input tables to declared output tables.

A stage never opens files, never collects the population into Python and never learns which engine
runs it: it receives narwhals LazyFrames and returns LazyFrames. Declaring inputs and outputs lets the
runner order stages, check that every table a stage needs exists, and time and count each one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

import narwhals as nw

from openphm.engine import Engine


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
    params: Mapping[str, object] = field(default_factory=dict)
    """Run options a stage may read, e.g. ``codelists``: a folder of the user's own definitions."""


StageFunction = Callable[[Mapping[str, nw.LazyFrame | None], RunContext], Mapping[str, nw.LazyFrame]]


@dataclass(frozen=True)
class Stage:
    """A declared step of the pipeline."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
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


_REGISTRY: dict[str, Stage] = {}


def stage(
    name: str,
    *,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    optional_inputs: tuple[str, ...] = (),
    facts: tuple[str, ...] = (),
    per_person: bool = False,
    same_facts: bool = False,
) -> Callable[[StageFunction], StageFunction]:
    """Register the decorated function as a pipeline stage."""

    def register(function: StageFunction) -> StageFunction:
        if name in _REGISTRY:
            raise ValueError(f"stage {name!r} is registered twice")
        doc = (function.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = Stage(
            name, inputs, outputs, function, optional_inputs, doc[0] if doc else "", facts, per_person, same_facts
        )
        return function

    return register


def registered_stages() -> dict[str, Stage]:
    """Every stage of the package (importing :mod:`openphm.stages` registers them)."""
    import openphm.stages  # noqa: F401 - imported for its registrations

    return dict(_REGISTRY)
