"""Risk scores: QRISK3, comorbidity indices (Charlson, Elixhauser, HFRS), frailty and multimorbidity."""
