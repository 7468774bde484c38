"""Engines run detectors over data (batch now; streaming and distributed later) and nothing else."""
