"""Trained models: features, training, model files with their cards. Detectors that use them live in detect/."""
