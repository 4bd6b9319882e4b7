"""Roles, what each may do, and the geography levels a grant is scoped to.

A role is a name with a set of permissions. Adding a role is one entry in :data:`ROLES` and the code that checks
its new permission: grants store the role as text, so no migration is needed.
"""

from __future__ import annotations

from enum import StrEnum

from openphm.analytics.aggregates import LEVELS, NATIONAL_CODE

__all__ = ["LEVELS", "NATIONAL_CODE", "ROLES", "Permission", "permissions"]


class Permission(StrEnum):
    """What a route can ask for beyond being signed in."""

    AGGREGATES = "aggregates"  # disclosure-controlled statistics of any area
    PERSON_LEVEL = "person_level"  # pseudonymised person-level rows, within the grant's scope
    ADMINISTER = "administer"  # users, grants and the audit log
    REIDENTIFY = "reidentify"  # ask to re-identify the practice's own list; identified worklists and person views
    APPROVE = "approve"  # approve or refuse others' re-identification requests within the grant's scope


ROLES: dict[str, frozenset[Permission]] = {
    "viewer": frozenset({Permission.AGGREGATES}),
    "analyst": frozenset({Permission.AGGREGATES, Permission.PERSON_LEVEL}),
    # An administrator manages accounts; seeing people needs an analyst grant as well (separation of duties).
    "admin": frozenset({Permission.AGGREGATES, Permission.ADMINISTER}),
    # Direct care (docs/direct-care.md): a clinician of a practice or PCN, and the information governance or
    # Caldicott role that approves its requests. Neither sees pseudonymised person-level lists by this role.
    "clinician": frozenset({Permission.AGGREGATES, Permission.REIDENTIFY}),
    "approver": frozenset({Permission.AGGREGATES, Permission.APPROVE}),
}


def permissions(role: str) -> frozenset[Permission]:
    """The permissions of ``role``; an unknown role (e.g. one removed from a newer release) grants nothing."""
    return ROLES.get(role, frozenset())
