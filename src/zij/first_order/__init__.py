"""First-order optimizers written from their papers."""
