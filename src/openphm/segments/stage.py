"""The segment and segment_transition stages."""
