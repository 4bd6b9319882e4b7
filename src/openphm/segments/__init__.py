"""Bridges to Health segments and subsegments, need tiers, transitions and explanations.

>>> from openphm.segments import explain                              # doctest: +SKIP
>>> explain(Path("phm.duckdb"), "PSEUDONYM").segment
'organ_failure'
"""

from openphm.segments.explain import ExplainError, Explanation, Fact, explain
from openphm.segments.rules import Rules, SegmentRulesError, load_rules

__all__ = ["ExplainError", "Explanation", "Fact", "Rules", "SegmentRulesError", "explain", "load_rules"]
