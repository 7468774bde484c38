"""Pipelines: a whole run from inputs to alerts out — batch over files, stream over a feed, the demo."""
