#!/usr/bin/env python3
"""The Debian packages the test suites need, and which of them this machine lacks (stdlib only: ./tox and
.ci/run use it before any virtualenv exists).

    python3 .ci/packages.py      # prints each missing package on its own line (nothing when all are there)
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable

#: package -> (the programs that prove it is installed, what needs it). A program with a "/" is a path.
PACKAGES: dict[str, tuple[tuple[str, ...], str]] = {
    "rsync": (("rsync",), "sync to SSH syndics (tests/integration/test_sync_ssh.py)"),
    "openssh-server": (("/usr/sbin/sshd",), "the local sshd of the SSH sync tests"),
    "openssh-client": (("ssh", "ssh-keygen"), "the SSH sync tests"),
    "nodejs": (("node",), "gitlab-ci-local (tests/gitlab_ci)"),
    "npm": (("npm",), "installing gitlab-ci-local (tests/gitlab_ci)"),
    "redis-server": (("redis-server",), "the external job cache tests"),
    "chromium": (("/usr/bin/chromium",), "the status page's browser tests"),
    "chromium-driver": (("/usr/bin/chromedriver",), "the status page's browser tests"),
}


def _present(program: str, which: Callable[[str], str | None]) -> bool:
    return os.access(program, os.X_OK) if "/" in program else which(program) is not None


def missing(which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """The packages of :data:`PACKAGES` that are not installed here, in that order."""
    return [pkg for pkg, (programs, _) in PACKAGES.items() if not all(_present(p, which) for p in programs)]


def notice(packages: list[str]) -> str:
    """What ./tox says before it runs when ``packages`` are missing (empty when none is)."""
    if not packages:
        return ""
    needs = "".join(f"\n  {pkg:<16} {PACKAGES[pkg][1]}" for pkg in packages)
    return (f"./tox: missing Debian packages:{needs}\n"
            f"the tests that need them fail under CI=true and are skipped otherwise (pytest's summary says which);\n"
            f"install them: apt-get install {' '.join(packages)} - or run .ci/run as root, which does\n")


if __name__ == "__main__":
    for name in missing():
        print(name)
    sys.exit(0)
