"""Clinical codes for synthetic records, drawn from the package's own code lists.

A condition's code is drawn from its list but, where possible, from codes that no other condition's list
holds, so that a person coded for asthma is not also counted as having COPD by the register stage. Codes
that should count twice on purpose (a diabetes code that is also an eFI deficit, a type 2 code that is
also a diabetes code) are asked for with ``also``. Generic codes that the generator needs beyond the lists
(a consultation, an A&E diagnosis, an acute hospital diagnosis) are kept only if no condition list
matches them.
"""

from __future__ import annotations

import csv
import re
from functools import cache, lru_cache

import numpy as np

from openphm.codes import Definition, load_definitions
from openphm.content import content_path

CONSULTATION_SNOMED = ("11429006", "185317003", "308335008", "185389009")
"""Consultation, telephone encounter, patient encounter procedure, follow-up visit."""
AE_SNOMED = ("29857009", "21522001", "25064002", "68566005", "233604007", "125605004", "62315008", "422587007")
"""Chest pain, abdominal pain, headache, urinary tract infection, pneumonia, fracture, diarrhoea, nausea."""
ACUTE_ICD10 = ("R07", "R10", "J18", "N390", "K35", "S52", "S82", "A09", "R55", "L03", "K80", "J22", "T78", "R51")
"""Acute primary diagnoses for emergency admissions of people without a matching long-term condition."""
FRAIL_ICD10 = ("R26", "W19", "N390", "R41", "R29", "W18", "S72", "E86", "R32", "L89", "Z74", "R54")
"""Hospital Frailty Risk Score categories (gait, falls, UTI, cognition, hip fracture, dehydration ...)."""
ELECTIVE_ICD10 = ("H25", "M17", "M16", "K40", "K80", "N40", "D12", "Z51", "M23", "H26", "I83", "N81")
ELECTIVE_OPCS4 = ("C751", "W371", "W381", "T201", "J183", "M653", "H221", "W822", "L852", "Q074")
MATERNITY_ICD10 = ("O800", "O801", "O821", "O700", "Z370")


@lru_cache(maxsize=1)
def definitions() -> dict[str, Definition]:
    return load_definitions()


def _system_codes(definition: str, system: str) -> list[str]:
    d = definitions().get(definition)
    if d is None or system not in d.codelists:
        return []
    return sorted(d.codelists[system].codes)


def _matches(code: str, listed: set[str], prefix: bool) -> bool:
    if not prefix:
        return code in listed
    return any(code[:k] in listed for k in range(1, len(code) + 1))


@lru_cache(maxsize=1)
def _condition_codes() -> dict[str, dict[str, set[str]]]:
    """Codes of every condition list (eFI lists aside) by definition and system."""
    out: dict[str, dict[str, set[str]]] = {}
    for d in definitions().values():
        if d.kind == "condition" and not d.id.startswith("efi_"):
            out[d.id] = {system: set(codelist.codes) for system, codelist in d.codelists.items()}
    return out


@cache
def pool(definition: str, system: str, also: tuple[str, ...] = (), term: str | None = None) -> np.ndarray:
    """Codes of ``definition`` (and of every list in ``also``), preferring codes no other condition holds.

    ``term``: a regular expression the code's term must match (e.g. routine antenatal codes of the
    pregnancy list rather than its complications).
    """
    codes = _system_codes(definition, system)
    if term:
        with content_path("codelists", definition, f"{system}.csv").open(encoding="utf-8-sig") as handle:
            wanted = {r["code"] for r in csv.DictReader(handle) if re.search(term, r["term"], re.IGNORECASE)}
        codes = [c for c in codes if c in wanted] or codes
    for other in also:
        both = [c for c in codes if _matches(c, set(_system_codes(other, system)), system != "snomed")]
        codes = both or codes
    prefix = system not in ("snomed", "dmd")
    mine = {definition, *also}
    others = [lists.get(system, set()) for name, lists in _condition_codes().items() if name not in mine]
    own = [c for c in codes if not any(_matches(c, o, prefix) for o in others)]
    return np.array(own or codes, dtype=object)


@cache
def outside_conditions(system: str, codes: tuple[str, ...]) -> np.ndarray:
    """The ``codes`` that no condition list holds (a generic code must not create a condition)."""
    prefix = system != "snomed"
    lists = [lists.get(system, set()) for lists in _condition_codes().values()]
    kept = [c for c in codes if not any(_matches(c, o, prefix) for o in lists)]
    return np.array(kept, dtype=object)


def pick(codes: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` codes drawn from ``codes``; lists are skewed towards their first codes, as real use is."""
    if len(codes) == 0:
        raise ValueError("empty code pool")
    index = np.minimum((rng.random(n) ** 2 * len(codes)).astype(np.int64), len(codes) - 1)
    return codes[index]
