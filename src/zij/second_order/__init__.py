"""Second-order and orthogonalized optimizers: curvature preconditioners and orthogonalized updates."""
