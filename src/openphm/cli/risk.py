"""`phm` commands for risk."""
