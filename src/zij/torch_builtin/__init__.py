"""torch.optim's own classes, registered with their Canon metadata (no copies)."""
