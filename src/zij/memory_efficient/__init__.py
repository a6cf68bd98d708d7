"""Memory-efficient optimizers: factored, quantized, low-rank and fused states."""
