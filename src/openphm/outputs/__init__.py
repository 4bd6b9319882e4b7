"""What every output that leaves openphm shares, whichever command or app writes it."""
