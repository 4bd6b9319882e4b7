"""Crafted people shared by the segment and explain tests (no tests here): one per rule and precedence pair.

Risk scores and activity counts are crafted too, by stand-in stages that write the ``risk`` and ``activity``
tables with chosen values, so that each rule's threshold is tested exactly, whatever the upstream stages
compute. Everything else (population, registers, measures, segment) runs the real stages on ingested data.
"""

from __future__ import annotations
