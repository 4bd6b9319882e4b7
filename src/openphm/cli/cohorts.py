"""`phm` commands for cohorts."""
