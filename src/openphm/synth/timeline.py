"""Time on the list, and turning yearly counts into dated rows, without loops over people."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openphm.synth.people import People, Window


@dataclass(frozen=True)
class Exposure:
    """Each person's days on the list within the window, overall and by data year."""

    first: np.ndarray
    last: np.ndarray
    year_first: np.ndarray
    """(people, years): first day on the list in each data year (> year_last when not on it)."""
    year_last: np.ndarray

    @property
    def year_fraction(self) -> np.ndarray:
        """(people, years): the share of each data year spent on the list (0-1, by 365.25 days)."""
        return np.clip(self.year_last - self.year_first + 1, 0, None) / 365.25


def exposure(p: People, window: Window) -> Exposure:
    first = np.maximum.reduce([np.full(p.size, window.start), p.registered, p.birth])
    last = np.minimum(np.full(p.size, window.last), p.exit_day)
    bounds = window.year_bounds()
    year_first = np.maximum(first[:, None], bounds[None, :-1])
    year_last = np.minimum(last[:, None], bounds[None, 1:] - 1)
    return Exposure(first, last, year_first, year_last)


def spread(counts: np.ndarray) -> np.ndarray:
    """Row numbers repeated by their counts: [2, 0, 1] -> [0, 0, 2]."""
    return np.repeat(np.arange(len(counts)), counts)


def uniform_days(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """A day between ``low`` and ``high`` inclusive (``high`` >= ``low``)."""
    return low + np.floor(rng.random(len(low)) * (high - low + 1)).astype(np.int64)


def yearly_events(
    rng: np.random.Generator, rate: np.ndarray, exp: Exposure
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson counts per person and data year at ``rate`` (people, years) events per year on the list.

    Returns (person, year, day) of every event, in person order.
    """
    counts = rng.poisson(rate * exp.year_fraction)
    flat = counts.ravel()
    cell = spread(flat)
    person, year = np.divmod(cell, counts.shape[1])
    day = uniform_days(rng, exp.year_first[person, year], exp.year_last[person, year])
    return person, year, day


def within(
    rng: np.random.Generator, person: np.ndarray, low: np.ndarray, high: np.ndarray, rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson(``rate`` per year x years) events for each row's person between ``low`` and ``high``."""
    span = np.clip(high - low + 1, 0, None)
    counts = rng.poisson(rate * span / 365.25)
    rows = spread(counts)
    return person[rows], uniform_days(rng, low[rows], high[rows])


def attach(
    rng: np.random.Generator,
    person: np.ndarray,
    day: np.ndarray,
    lower: np.ndarray,
    starts: np.ndarray,
    visit_day: np.ndarray,
) -> np.ndarray:
    """Move each event to one of its person's visit days when that is not before ``lower``.

    Readings and reviews are recorded at consultations, so they share the consultation's day instead of
    adding days of their own. ``starts[i]`` is where person i's visits begin in ``visit_day``.
    """
    count = (starts[1:] - starts[:-1])[person]
    pick = starts[:-1][person] + np.floor(rng.random(len(person)) * np.maximum(count, 1)).astype(np.int64)
    candidate = visit_day[np.minimum(pick, max(len(visit_day) - 1, 0))] if len(visit_day) else day
    return np.where((count > 0) & (candidate >= lower), candidate, day)
