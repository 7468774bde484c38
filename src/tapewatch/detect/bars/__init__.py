"""Candle detectors: anomalies, isolation forest and forecast residuals, for inputs with nothing finer."""
