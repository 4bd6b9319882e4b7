"""`phm` commands for analytics."""
