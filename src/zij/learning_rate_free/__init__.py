"""Learning-rate-free and schedule-free optimizers."""
