"""Bridges to Health segments and subsegments, need tiers, transitions and explanations."""
