"""The emergency-admission model: features, training, model card and scoring."""
