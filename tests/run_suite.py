"""Run a pytest suite that may not exist yet without letting "no tests ran" pass silently.

Usage: ``python tests/run_suite.py NAME PYTEST-ARGS...``. pytest exits 5 when it collects nothing. For a suite
whose directory holds no test module yet (its issue has not landed) that is reported and accepted; once a test
module exists, exit 5 is a failure like any other.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


def main(argv: list[str]) -> int:
    name, args = argv[0], argv[1:]
    suite = Path(args[0])
    has_tests = any(suite.rglob("test_*.py"))
    rc = int(pytest.main(args))
    if rc == pytest.ExitCode.NO_TESTS_COLLECTED and not has_tests:
        print(f"saltpipe: the {name} suite has no test modules yet ({suite}); nothing to run")
        return 0
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
