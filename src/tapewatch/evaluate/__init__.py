"""Evaluation: alerts scored against labelled events and episodes, honestly (held-out data only)."""
