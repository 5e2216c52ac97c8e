"""Fixtures of the .gitlab-ci.yml test: gitlab-ci-local (installed into a cache once), a local topology.

* ``GITLAB_CI_LOCAL=<path>`` uses that gitlab-ci-local binary instead of installing one.
* ``SALTPIPE_CACHE_DIR`` (default ``~/.cache/saltpipe``) is where gitlab-ci-local is installed with
  ``npm install --prefix`` when absent. It needs Node >= 18 (``node`` and ``npm`` on PATH) and rsync.
* ``SALTPIPE_IT_WORKDIR=<dir>`` runs the deploy jobs against an already running topology (as in
  tests/integration) instead of starting one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.topology import Topology
from pipeline.topology import load as load_topology

REPO = Path(__file__).resolve().parents[2]
#: 4.60.0 is the newest release that runs on Node 20 (later ones need Node 22).
GCL_VERSION = "4.60.0"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """These tests run real jobs, real Salt daemons and need Node: mark them ``integration``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def gitlab_ci_local() -> Path:
    """The gitlab-ci-local executable, installed into the cache directory if it is not there yet."""
    given = os.environ.get("GITLAB_CI_LOCAL")
    if given:
        return Path(given)
    cache = Path(os.environ.get("SALTPIPE_CACHE_DIR", Path.home() / ".cache" / "saltpipe")) / f"gitlab-ci-local-{GCL_VERSION}"
    exe = cache / "node_modules" / ".bin" / "gitlab-ci-local"
    if exe.exists():
        return exe
    missing = [tool for tool in ("node", "npm", "rsync") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"gitlab-ci-local needs {', '.join(missing)} on PATH (Node >= 18, Debian's rsync); "
                    "install them (.ci/run does on CI)")
    cache.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(
            ["npm", "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--loglevel=error",
             f"gitlab-ci-local@{GCL_VERSION}"],
            capture_output=True, text=True, timeout=300, check=False,
        )
    except subprocess.TimeoutExpired:
        # npm retries network and TLS errors silently; a CA it does not trust looks exactly like this.
        pytest.fail(f"npm install gitlab-ci-local@{GCL_VERSION} did not finish in 300 s: check that the npm registry "
                    "is reachable and that NODE_EXTRA_CA_CERTS reaches npm (tox.ini passes it)")
    if proc.returncode != 0 or not exe.exists():
        pytest.fail(f"npm install gitlab-ci-local@{GCL_VERSION} failed (rc {proc.returncode}):\n{proc.stderr}")
    return exe


def _saltpipe(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", "--repo", str(REPO), *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def topology() -> Iterator[Topology]:
    """A local topology started with ``saltpipe topology up`` and stopped with ``down`` (or a running one)."""
    reuse = os.environ.get("SALTPIPE_IT_WORKDIR")
    if reuse:
        yield load_topology(Path(reuse))
        return
    # Salt's unix socket paths stop at 107 bytes: a short directory, not pytest's tmp_path.
    workdir = Path(tempfile.mkdtemp(prefix="sp-gcl-", dir="/tmp"))
    proc = _saltpipe("topology", "up", "--workdir", str(workdir), "--format", "json", "--timeout", "120")
    if proc.returncode != 0:
        _saltpipe("topology", "down", "--workdir", str(workdir))
        pytest.fail(f"saltpipe topology up failed (rc {proc.returncode}):\n{proc.stderr}\n{proc.stdout}")
    assert json.loads(proc.stdout)["state"] == "running"
    yield load_topology(workdir)
    down = _saltpipe("topology", "down", "--workdir", str(workdir), "--format", "json")
    assert down.returncode == 0, down.stderr
    shutil.rmtree(workdir, ignore_errors=True)
