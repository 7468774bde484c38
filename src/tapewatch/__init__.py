"""Tapewatch: market-manipulation surveillance (pump-and-dumps, wash trading, spoofing, anomalies)."""

__version__ = "0.1.0"
