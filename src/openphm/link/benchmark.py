"""A generated linkage benchmark with known truth: two extracts of one synthetic population.

Linkage quality cannot be judged without knowing who is who, and real identifiable data cannot sit in a
repository. So a seeded generator makes people (names from ``data/names.csv``, dates of birth, UK-shaped
postcodes, Modulus 11 valid NHS numbers, a few twins), gives each of two sources a subset, and damages
each record the way real extracts are damaged: typing errors, given and family names swapped, a changed
family name, a house move (same district or elsewhere), missing and invalid NHS numbers, missing dates, day
and month transposed, a digit mistyped, and formatting noise (case, accents, ``dd/mm/yyyy``, postcodes
without spaces). :func:`pairwise_quality` then scores a link map against the truth.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.resources import files

import numpy as np
import polars as pl

AREAS = ("LS", "M", "B", "S", "L", "NE", "BD", "HD", "WF", "HX", "YO", "HU", "DN", "SK", "OL", "BL", "WN", "WA")
UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Rates:
    """How often each kind of damage happens to a record (each drawn independently)."""

    nhs_valid: float
    nhs_invalid: float
    typo_given: float = 0.08
    typo_family: float = 0.08
    swapped_names: float = 0.03
    new_family_name: float = 0.02
    dob_missing: float = 0.03
    dob_transposed: float = 0.03
    dob_typo: float = 0.03
    moved_same_district: float = 0.08
    moved_elsewhere: float = 0.05
    postcode_missing: float = 0.03
    sex_missing: float = 0.02
    uk_dates: float = 0.5
    lower_case: float = 0.3


LEFT = Rates(nhs_valid=0.6, nhs_invalid=0.05)
RIGHT = Rates(nhs_valid=0.4, nhs_invalid=0.05)


@dataclass(frozen=True)
class Benchmark:
    left: pl.DataFrame
    right: pl.DataFrame
    truth: pl.DataFrame
    """``source``, ``record_id``, ``person``: who each record really is."""


@dataclass(frozen=True)
class Quality:
    precision: float
    recall: float
    true_pairs: int
    predicted_pairs: int


def _names() -> tuple[list[str], list[str], list[str]]:
    rows = list(csv.DictReader(io.StringIO(files("openphm.link").joinpath("data", "names.csv").read_text("utf-8"))))
    female = [r["name"] for r in rows if r["kind"] == "given" and r["sex"] == "F"]
    male = [r["name"] for r in rows if r["kind"] == "given" and r["sex"] == "M"]
    family = [r["name"] for r in rows if r["kind"] == "family"]
    return female, male, family


def nhs_number(rng: np.random.Generator) -> str:
    """A random ten-digit number whose Modulus 11 check digit holds."""
    while True:
        digits = [int(d) for d in rng.integers(0, 10, 9)]
        check = (11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11) % 11
        if check != 10:
            return "".join(map(str, digits)) + str(check)


def _postcode(rng: np.random.Generator, district: str | None = None) -> str:
    if district is None:
        district = f"{AREAS[rng.integers(len(AREAS))]}{rng.integers(1, 21)}"
    unit = "".join(UNIT_LETTERS[i] for i in rng.integers(0, len(UNIT_LETTERS), 2))
    return f"{district} {rng.integers(0, 10)}{unit}"


def _people(n: int, rng: np.random.Generator) -> list[dict[str, str]]:
    female, male, family = _names()
    start = date(1925, 1, 1)
    people: list[dict[str, str]] = []
    while len(people) < n:
        sex = "F" if rng.random() < 0.5 else "M"
        person = {
            "sex": sex,
            "given": str(rng.choice(female if sex == "F" else male)),
            "family": str(rng.choice(family)),
            "dob": (start + timedelta(days=int(rng.integers(0, 36_000)))).isoformat(),
            "postcode": _postcode(rng),
            "nhs": nhs_number(rng),
            "imd": str(rng.integers(1, 6)),
        }
        people.append(person)
        if rng.random() < 0.01 and len(people) < n:  # a twin: same family, birth date and home
            twin_sex = "F" if rng.random() < 0.5 else "M"
            given = str(rng.choice(female if twin_sex == "F" else male))
            people.append({**person, "sex": twin_sex, "given": given, "nhs": nhs_number(rng)})
    return people


def _typo(text: str, rng: np.random.Generator) -> str:
    """One typing error: a letter substituted, dropped, doubled or swapped with the next."""
    if len(text) < 3:
        return text
    i = int(rng.integers(1, len(text) - 1))
    kind = rng.integers(0, 4)
    if kind == 0:
        return text[:i] + ALPHABET[rng.integers(26)].lower() + text[i + 1 :]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    if kind == 2:
        return text[:i] + text[i] + text[i:]
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _record(person: dict[str, str], rates: Rates, family: list[str], rng: np.random.Generator) -> dict[str, str]:
    given, surname = person["given"], person["family"]
    if rng.random() < rates.new_family_name:
        surname = str(rng.choice(family))
    if rng.random() < rates.typo_given:
        given = _typo(given, rng)
    if rng.random() < rates.typo_family:
        surname = _typo(surname, rng)
    if rng.random() < rates.swapped_names:
        given, surname = surname, given
    if rng.random() < rates.lower_case:
        given, surname = given.lower(), surname.lower()

    year, month, day = person["dob"].split("-")
    roll = rng.random()
    dob = ""
    if roll < rates.dob_missing:
        year = ""
    elif roll < rates.dob_missing + rates.dob_transposed and int(day) <= 12 and day != month:
        month, day = day, month
    elif roll < rates.dob_missing + rates.dob_transposed + rates.dob_typo:
        day = f"{min(28, max(1, int(day) + int(rng.choice([-1, 1]) * rng.integers(1, 10)))):02d}"
    if year:
        dob = f"{day}/{month}/{year}" if rng.random() < rates.uk_dates else f"{year}-{month}-{day}"

    postcode = person["postcode"]
    roll = rng.random()
    if roll < rates.moved_same_district:
        postcode = _postcode(rng, postcode.split(" ")[0])
    elif roll < rates.moved_same_district + rates.moved_elsewhere:
        postcode = _postcode(rng)
    elif roll < rates.moved_same_district + rates.moved_elsewhere + rates.postcode_missing:
        postcode = ""
    if postcode and rng.random() < rates.lower_case:
        postcode = postcode.replace(" ", "").lower()

    roll = rng.random()
    nhs = ""
    if roll < rates.nhs_valid:
        nhs = person["nhs"]
    elif roll < rates.nhs_valid + rates.nhs_invalid:
        nhs = person["nhs"][:9] + str((int(person["nhs"][9]) + 1) % 10)  # one digit off: fails Modulus 11
    return {
        "nhs_number": nhs,
        "given_name": given,
        "family_name": surname,
        "date_of_birth": dob,
        "sex": "" if rng.random() < rates.sex_missing else person["sex"],
        "postcode": postcode,
        "imd_quintile": person["imd"],
    }


def generate(records_per_side: int, seed: int = 1, share: float = 0.8) -> Benchmark:
    """Two extracts of about ``records_per_side`` records each; each person is in each with chance ``share``."""
    rng = np.random.default_rng(seed)
    _, _, family = _names()
    people = _people(round(records_per_side / share), rng)
    sides: dict[str, list[dict[str, str]]] = {"left": [], "right": []}
    truth: list[dict[str, str | int]] = []
    for side, rates, prefix in (("left", LEFT, "L"), ("right", RIGHT, "R")):
        chosen = [i for i in range(len(people)) if rng.random() < share]
        ids = rng.permutation(10 * len(people))[: len(chosen)]
        for i, number in zip(rng.permutation(chosen), ids, strict=True):
            record_id = f"{prefix}{number:08d}"
            sides[side].append({"record_id": record_id, **_record(people[int(i)], rates, family, rng)})
            truth.append({"source": side, "record_id": record_id, "person": int(i)})
    return Benchmark(pl.DataFrame(sides["left"]), pl.DataFrame(sides["right"]), pl.DataFrame(truth))


def _cross_pairs(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    left = frame.filter(pl.col("source") == "left").select("record_id", key)
    right = frame.filter(pl.col("source") == "right").select("record_id", key)
    return left.join(right, on=key, suffix="_r").select("record_id", "record_id_r")


def pairwise_quality(link_map: pl.DataFrame, truth: pl.DataFrame) -> Quality:
    """Precision and recall over left-right record pairs: a pair is predicted when both records have one
    ``person_key`` and true when both are one generated person."""
    predicted = _cross_pairs(link_map, "person_key")
    true = _cross_pairs(truth, "person")
    hits = predicted.join(true, on=["record_id", "record_id_r"]).height
    return Quality(
        precision=hits / predicted.height if predicted.height else 1.0,
        recall=hits / true.height if true.height else 1.0,
        true_pairs=true.height,
        predicted_pairs=predicted.height,
    )
