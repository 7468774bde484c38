"""The labelled market simulator: a synthetic crypto market with pumps, wash trades and spoofing."""
