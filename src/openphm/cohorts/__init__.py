"""Cohorts for proactive care: definitions as data, members and attrition."""
