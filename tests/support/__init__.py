"""Helpers both the unit tests and tests/e2e use (a unit test never imports tests.e2e)."""
