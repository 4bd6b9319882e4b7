"""The activity stage (table `activity`)."""
