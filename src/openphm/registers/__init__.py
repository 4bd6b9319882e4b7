"""Condition registers and clinical measures, from code lists shipped as data."""
