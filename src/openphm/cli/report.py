"""`phm` commands for report."""
