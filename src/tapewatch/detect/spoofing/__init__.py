"""Spoofing and layering detectors: on L3 order events (accounts) and on L2 book snapshots."""
