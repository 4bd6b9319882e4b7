"""The risk stage (table `risk`): QRISK3, eFI, HFRS, Charlson, Elixhauser and CMS per person and as_of."""
