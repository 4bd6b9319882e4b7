"""Names and code groups that more than one stage relies on, defined once.

A constant lives here when two stages must agree on it for their tables to join or their counts to match:
the key of a person-level snapshot table, and the groups of a coded field that several settings count.
"""

from __future__ import annotations

PERSON_AS_OF = ("person_id", "as_of")
"""The key of every person-level snapshot table: one row per person and as_of date."""

ELECTIVE_ADMISSION_METHODS = ("11", "12", "13")
"""Admission methods of an elective admission (NHS Data Dictionary, ADMISSION METHOD: waiting list, booked, planned)."""

EMERGENCY_ADMISSION_METHODS = ("21", "22", "23", "24", "25", "28", "2A", "2B", "2D")
"""Admission methods of an emergency admission (NHS Data Dictionary, ADMISSION METHOD, the 2x group, less 2C).

21 via the provider's own emergency department, 22 GP, 23 bed bureau, 24 consultant clinic, 25 mental health
crisis resolution team, 2A another provider's emergency department, 2B transfer of an admitted patient from
another provider in an emergency, 2D other emergency. 28 ("other means") was retired in April 2013 and split
into 2A-2D; extracts still carry it for earlier years, so it stays.

2C, a baby born at home as intended, sits in the data dictionary's emergency group for want of another place,
but it is the planned admission of a healthy newborn, not an unplanned admission of an ill person: counting it
would add home births to the emergency counts, bed days and costs, the acutely ill segment and the admission
model's outcome. It is therefore counted with "other admissions", like the maternity methods 31-32. HES-based
totals that group admission methods by their first digit include 2C; the difference is the number of planned
home births (about 2% of births in England). ACSC indicators are unaffected either way: such a spell's primary
diagnosis is a birth code (Z38), never an ambulatory care sensitive condition.
"""
