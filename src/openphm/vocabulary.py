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
"""Admission methods of an emergency admission (NHS Data Dictionary, ADMISSION METHOD, the 2x group).

28 ("other means") was retired in 2013 and split into 2A-2D; extracts still carry it for earlier years.
2C, a baby born at home as intended, is in the data dictionary's emergency group but is a planned birth,
not an unplanned admission of an ill person, so it is not counted here.
"""
