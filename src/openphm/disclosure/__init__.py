"""Disclosure control: every count that leaves the store (exports, report, model card, terminal) passes here.

A top-level package because analytics, risk, the report, the API and the CLI all publish counts, and each
must apply the same rule (:data:`POLICIES`); the rules themselves are in :mod:`.control`.
"""

from openphm.disclosure.control import (
    POLICIES,
    Policy,
    Protected,
    protect,
    published_counts,
    round_counts,
    suppress,
)

__all__ = ["POLICIES", "Policy", "Protected", "protect", "published_counts", "round_counts", "suppress"]
