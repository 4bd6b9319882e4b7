"""Synthetic England: a realistic, scalable synthetic population that satisfies the input contract.

``generate(out, people=N, seed=S)`` writes one file per contract table plus ``practice.csv``; see
``docs/synth.md`` for what is modelled and how it compares with the national reference figures.
"""

from openphm.synth.generate import SynthError, SynthResult, generate

__all__ = ["SynthError", "SynthResult", "generate"]
