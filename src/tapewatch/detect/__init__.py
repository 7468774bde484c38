"""Detectors: one module per family, each causal and vectorised over normalised frames."""
