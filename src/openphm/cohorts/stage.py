"""The cohort stage (tables `cohort_member`, `cohort_attrition`)."""
