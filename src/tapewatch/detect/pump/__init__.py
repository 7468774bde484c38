"""Pump-and-dump detectors: the rule on the tape (pump_onset), the trained model, Kamps & Kleinberg."""
