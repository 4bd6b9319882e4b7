"""Who is in the population at each as_of date, with their demographics (the stage is in :mod:`.stage`)."""
