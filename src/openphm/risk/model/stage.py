"""The admission_risk stage: scores everyone with the current model."""
