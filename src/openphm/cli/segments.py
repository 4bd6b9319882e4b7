"""`phm` commands for segments."""
