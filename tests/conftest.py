"""Fixtures live in tests/fixtures.py (loaded for every folder by the root conftest.py)."""

from tests.fixtures import PASSWORD, host_of

__all__ = ["PASSWORD", "host_of"]
