"""End-to-end tests: the console in a real browser (Chromium via Playwright) against a real server.

A package, so its conftest does not shadow `tests/conftest.py` (whose market generators the tests import).
"""
