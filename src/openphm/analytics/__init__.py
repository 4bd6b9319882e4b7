"""Analytics over the pipeline's tables; every count that leaves the store passes through :mod:`disclosure`."""
