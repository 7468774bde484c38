"""Wash-trading detectors: on accounts (venue data) and on the public tape."""
