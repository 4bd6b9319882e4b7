"""``phm link``: probabilistic record linkage of two identifiable extracts, upstream of the store.

Sources without a reliable NHS number (a local authority's social care system, a hospice, a voluntary
sector register) can join the store only once their records carry one person key. This package finds it
(a deterministic step on valid NHS numbers, then Splink's Fellegi-Sunter model) on the controller's side,
and hands on a key map; names, dates of birth and postcodes never enter the store.
"""
