"""Feature code shared by the training and the inference pipeline (no harness imports)."""
