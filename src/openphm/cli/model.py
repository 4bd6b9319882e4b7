"""`phm` commands for the emergency-admission model."""
