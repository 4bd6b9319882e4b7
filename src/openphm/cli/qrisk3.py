"""`phm` commands for qrisk3."""
