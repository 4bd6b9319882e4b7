"""`phm` commands for synth."""
