"""Code lists and GP events for the register and measure tests."""

from __future__ import annotations

from pathlib import Path

CODELISTS = Path(__file__).resolve().parents[1] / "data" / "codelists"


def gp(nhs: str, when: str, code: str) -> dict[str, object]:
    return {"nhs_number": nhs, "event_date": when, "snomed_code": code, "value": None, "unit": None}
