"""Synthetic England: a realistic, scalable synthetic population that satisfies the input contract."""
