"""Unit tests' shared setup. pytest imports this conftest with its directory (tests/unit, not a package) put on
sys.path, which is what makes ``from doubles import FakeClock`` work in every unit test module."""
