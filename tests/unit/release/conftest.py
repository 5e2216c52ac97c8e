"""Fixtures for release tests (helpers live in release_helpers.py, a unique module name across test dirs)."""

from release_helpers import make_repo  # noqa: F401  (a fixture, re-exported for pytest)
