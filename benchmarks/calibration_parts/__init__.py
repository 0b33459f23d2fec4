"""Parts of the calibration benchmark: one module per layer, each with ``run(quick, seed)``."""
