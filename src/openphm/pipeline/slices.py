"""Person slices: running a per-person stage on ranges of person_id, to bound its memory on large populations.

A stage whose output rows for a person depend only on that person's input rows (registers, measures,
activity, scores, segments) gives the same tables whether it runs on everyone at once or on disjoint
ranges of people whose results are appended. Hash aggregations and joins keyed on the person grow with
the number of people: at ten million people the activity stage's were several times the machine's
memory, so the runner runs such stages one slice at a time once the population exceeds
``people_per_slice`` (a run option, :class:`openphm.options.RunOptions`). Slices are ranges between sorted
person_id boundaries, so every engine filters them with a plain comparison and every person falls in exactly one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise

import narwhals as nw

from openphm.engine import count, distinct

PERSON = "person_id"


@dataclass(frozen=True)
class PersonSlice:
    """People with ``low <= person_id < high``; None is an open end."""

    low: str | None
    high: str | None

    def of(self, frame: nw.LazyFrame) -> nw.LazyFrame:
        """The frame's rows for the slice's people; a table without person_id is used whole."""
        if PERSON not in frame.collect_schema().names():
            return frame
        condition = None
        if self.low is not None:
            condition = nw.col(PERSON) >= self.low
        if self.high is not None:
            upper = nw.col(PERSON) < self.high
            condition = upper if condition is None else condition & upper
        return frame if condition is None else frame.filter(condition)


WHOLE = (PersonSlice(None, None),)


def person_slices(population: nw.LazyFrame, people_per_slice: int) -> tuple[PersonSlice, ...]:
    """As few equal ranges of people as keep each within ``people_per_slice``, from the sorted person ids.

    Only the count and the boundaries (one id per slice) are collected; the ids stay in the engine.
    """
    if people_per_slice < 1:
        raise ValueError("people_per_slice must be at least 1")
    people = population.select(PERSON).pipe(distinct)
    total = count(people)
    size = -(-total // -(-total // people_per_slice)) if total else 1  # ceil(total / number of slices)
    bounds = (
        people.with_row_index("position", order_by=PERSON)
        .filter((nw.col("position") % size == 0) & (nw.col("position") > 0))
        .select(PERSON)
        .collect()
        .get_column(PERSON)
        .sort()
        .to_list()
    )
    edges: list[str | None] = [None, *bounds, None]
    return tuple(PersonSlice(low, high) for low, high in pairwise(edges))


def sliced(tables: Mapping[str, nw.LazyFrame | None], part: PersonSlice) -> dict[str, nw.LazyFrame | None]:
    """Every input table restricted to the slice's people (absent tables stay None)."""
    return {name: None if frame is None else part.of(frame) for name, frame in tables.items()}
