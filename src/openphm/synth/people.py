"""Who the synthetic people are: identity, age, sex, ethnicity, residence, registration, birth and death.

Everyone belongs to one of three groups over the data window: registered at its end (the living list,
whose ages follow England's structure at the end of the window, so the youngest were born during it),
died during it (ages at death as in England's deaths), or left the area (registration ended). A share of
the living registered during the window (moved in). Days are counted from 1970-01-01.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openphm.synth.geography import Practices, lsoas, residence

LIVING, DIED, LEFT = 0, 1, 2
YEAR = 365.25
NO_DATE = np.iinfo(np.int32).max
"""Stands for 'no date' in day arrays, so that comparisons such as ``onset <= day`` stay simple."""
NHS_RANGE = (999_000_000, 999_999_999)
"""Nine-digit stems of the NHS numbers reserved for testing (999 000 0000 - 999 999 9999)."""
ETHNIC_GROUP = {
    **dict.fromkeys("ABC", "White"),
    **dict.fromkeys("DEFG", "Mixed"),
    **dict.fromkeys("HJKL", "Asian"),
    **dict.fromkeys("MNP", "Black"),
    **dict.fromkeys("RS", "Other"),
    "Z": "Not stated",
}


@dataclass(frozen=True)
class Window:
    """The data window: days ``start`` up to and including ``last`` (the extract date)."""

    start: int
    last: int
    years: int

    def year_bounds(self) -> np.ndarray:
        """First day of each data year and the day after the window (years + 1 values)."""
        first = np.datetime64(int(self.start), "D").astype("datetime64[Y]").astype(int) + 1970
        month_day = np.datetime64(int(self.start), "D") - np.datetime64(int(self.start), "D").astype("datetime64[Y]")
        bounds = [
            (np.datetime64(f"{first + y:04d}-01-01") + month_day).astype("datetime64[D]").astype(np.int64)
            for y in range(self.years + 1)
        ]
        return np.array(bounds, dtype=np.int64)


def nhs_numbers(rng: np.random.Generator) -> np.ndarray:
    """Every Modulus 11 valid NHS number of the testing range, in an order shuffled by ``rng``."""
    stems = np.arange(NHS_RANGE[0], NHS_RANGE[1] + 1, dtype=np.int64)
    digits = (stems[:, None] // 10 ** np.arange(8, -1, -1)) % 10
    check = (11 - (digits * np.arange(10, 1, -1)).sum(axis=1) % 11) % 11
    keep = check != 10
    return rng.permutation(stems[keep] * 10 + check[keep])


@dataclass
class People:
    """One chunk of people as parallel arrays (index i is the same person everywhere)."""

    index: np.ndarray
    """Global person number (0..N-1), which fixes the practice and the identifier."""
    group: np.ndarray
    female: np.ndarray
    birth: np.ndarray
    death: np.ndarray
    registered: np.ndarray
    deregistered: np.ndarray
    """Registration end: the day of leaving (LEFT) or of death (DIED), else NO_DATE."""
    practice: np.ndarray
    lsoa: np.ndarray
    imd_decile: np.ndarray
    ethnicity: np.ndarray
    ethnic_group: np.ndarray
    """Ethnic group of the ethnicity letter (White, Mixed, Asian, Black, Other, Not stated)."""
    z: np.ndarray
    """Latent health propensity shared by all conditions (multimorbidity clustering)."""

    @property
    def size(self) -> int:
        return len(self.index)

    def age_at(self, day: np.ndarray | int) -> np.ndarray:
        return (np.asarray(day) - self.birth) / YEAR

    @property
    def exit_day(self) -> np.ndarray:
        """The last day the person is on the list: death, leaving, or NO_DATE."""
        return np.minimum(self.death, self.deregistered)

    @property
    def deprivation(self) -> np.ndarray:
        """+1 for the most deprived decile, -1 for the least (a linear scale for the condition models)."""
        return (5.5 - self.imd_decile) / 4.5


def _single_years(params: dict) -> np.ndarray:
    """Share of each single year of age 0..oldest from the 5-year band shares (the open band tapering off)."""
    shares = np.asarray(params["age_bands"], dtype=float)
    oldest = params["oldest_age"]
    years = np.zeros(oldest + 1)
    last = len(shares) - 1
    for band, share in enumerate(shares[:last]):
        years[band * 5 : band * 5 + 5] = share / 5
    tail = np.exp(-0.3 * np.arange(oldest + 1 - last * 5))
    years[last * 5 :] = shares[last] * tail / tail.sum()
    return years / years.sum()


def _tilted_ages(rng: np.random.Generator, lsoa: np.ndarray, params: dict) -> np.ndarray:
    """Ages that follow England's structure overall and each LSOA's own mix of children, adults and older people."""
    single = _single_years(params)
    n = len(lsoa)
    groups = ((0, 16), (16, 60), (60, len(single)))
    target = np.array([single[low:high].sum() for low, high in groups])
    pop = lsoas().population
    national = pop.sum(axis=0) / pop.sum()
    local = pop[lsoa] / pop[lsoa].sum(axis=1, keepdims=True)
    # Damped (a power below 1): a sample of a few practices should still resemble England as a whole.
    weights = target * (local / national) ** params["age_tilt"]
    weights /= weights.sum(axis=1, keepdims=True)
    broad = (rng.random(n)[:, None] > np.cumsum(weights, axis=1)).sum(axis=1).clip(0, 2)
    ages = np.empty(n)
    for group, (low, high) in enumerate(groups):
        chosen = broad == group
        within = single[low:high] / single[low:high].sum()
        ages[chosen] = low + rng.choice(high - low, size=int(chosen.sum()), p=within) + rng.random(int(chosen.sum()))
    return ages


def _death_ages(rng: np.random.Generator, bands: list, n: int) -> np.ndarray:
    table = np.asarray(bands, dtype=float)
    pick = rng.choice(len(table), size=n, p=table[:, 2] / table[:, 2].sum())
    return table[pick, 0] + rng.random(n) * (table[pick, 1] - table[pick, 0])


def _ethnicity(rng: np.random.Generator, decile: np.ndarray, age: np.ndarray, params: dict) -> np.ndarray:
    """NHS ethnic category letters; minorities more often in deprived areas and in younger age groups."""
    codes = np.array(list(params["ethnicity"]))
    shares = np.array(list(params["ethnicity"].values()), dtype=float)
    shares /= shares.sum()
    minority = ~np.isin(codes, list("ABC"))
    tilt = np.asarray(params["minority_by_decile"])[decile - 1] * np.select(
        [age < 18, age < 40, age < 65], [1.25, 1.2, 0.9], 0.45
    )
    weights = np.where(minority[None, :], shares[None, :] * tilt[:, None], shares[None, :])
    weights /= weights.sum(axis=1, keepdims=True)
    chosen = codes[(rng.random(len(decile))[:, None] > np.cumsum(weights, axis=1)).sum(axis=1).clip(0, len(codes) - 1)]
    return np.where(rng.random(len(decile)) < params["ethnicity_not_stated"], "Z", chosen)


def _died_share(params: dict, years: float, left: float) -> float:
    """Share of people who die in the window so that deaths per 1,000 person-years meet the target.

    Those who die, leave, join or are born during the window spend on average half of it on the list.
    """
    born = _single_years(params)[: int(np.ceil(years))].sum()
    joined = params["joined_per_year"] * years
    rate = params["deaths_per_1000"] / 1000 * years
    died = rate
    for _ in range(20):
        on_list = 1 - (died + left + (joined + born) * (1 - died - left)) / 2
        died = rate * on_list
    return died


def people(
    index: np.ndarray, practices: Practices, window: Window, rng: np.random.Generator, params: dict, latent: dict
) -> People:
    """The people numbered ``index`` (a contiguous chunk)."""
    n = len(index)
    span = window.last - window.start + 1
    years = span / YEAR
    left = params["left_per_year"] * years
    died = _died_share(params, years, left)
    group = np.select([(u := rng.random(n)) < died, u < died + left], [DIED, LEFT], LIVING).astype(np.int8)

    practice = np.searchsorted(practices.first, index, side="right") - 1
    lsoa = residence(practices.la[practice], rng)
    decile = lsoas().imd_decile[lsoa]

    exit_day = window.start + rng.integers(0, span, n)
    ages = _tilted_ages(rng, lsoa, params)
    death_ages = _death_ages(rng, params["death_age_bands"], n)
    age_at_ref = np.where(group == DIED, death_ages, ages)
    reference = np.where(group == LIVING, window.last, exit_day)
    birth = (reference - np.floor(age_at_ref * YEAR)).astype(np.int64)
    # The oldest people are older at the end of the window; nobody is born after their reference day.
    death = np.where(group == DIED, exit_day, NO_DATE).astype(np.int64)
    female = rng.random(n) < 0.5 + 0.004 * np.clip(age_at_ref - 65, 0, None) + (params["female_share"] - 0.5) * 0.5

    joined = (group == LIVING) & (rng.random(n) < params["joined_per_year"] * years)
    long_ago = window.start - (rng.random(n) * 20 * YEAR).astype(np.int64)
    registered = np.maximum(birth + rng.integers(7, 43, n), long_ago)
    registered = np.where(joined, np.maximum(birth, window.start + rng.integers(0, span, n)), registered)
    registered = np.minimum(registered, np.where(group == LIVING, window.last, exit_day))
    deregistered = np.where(group == LIVING, NO_DATE, exit_day).astype(np.int64)

    z = rng.standard_normal(n) + np.where(group == DIED, latent["decedent_shift"], 0.0)
    ethnicity = _ethnicity(rng, decile, age_at_ref, params)
    letters, inverse = np.unique(ethnicity, return_inverse=True)
    return People(
        index=index,
        group=group,
        female=female,
        birth=birth,
        death=death,
        registered=registered.astype(np.int64),
        deregistered=deregistered,
        practice=practice,
        lsoa=lsoa,
        imd_decile=decile,
        ethnicity=ethnicity,
        ethnic_group=np.array([ETHNIC_GROUP[letter] for letter in letters])[inverse],
        z=z,
    )
