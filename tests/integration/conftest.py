"""Integration tests on real Salt daemons: ONE local topology (MoM -> 3 syndic masters -> 8 minions) per session.

The topology is started the way users start it - ``saltpipe topology up`` in a subprocess that exits - and the
tests then work on it through :func:`pipeline.topology.load`, from this process. That proves on every run that
the daemons outlive ``up`` and are found again from their pid files. ``saltpipe topology down`` stops it at
the end, and the session fails if a daemon survives.

Every result is judged from the returns against the expected minion set, never from a CLI exit code
(``salt`` exits 0 when a master refuses a call).

Environment: ``SALTPIPE_KEEP_TOPOLOGY=1`` keeps the work directory (configs, logs) after the session;
``SALTPIPE_IT_WORKDIR=<dir>`` runs the tests on an already running topology instead of starting one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from it_helpers import build_content_tree, saltpipe, serve_tree, short_tmpdir

from pipeline.topology import Topology
from pipeline.topology import load as load_topology


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration needs real daemons: mark it ``integration``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def topology() -> Iterator[Topology]:
    """The session's topology, started with ``saltpipe topology up`` and stopped with ``down``.

    With ``SALTPIPE_IT_WORKDIR`` set to the work directory of a running topology, that one is used and left
    running (for iterating on tests; CI never sets it).
    """
    reuse = os.environ.get("SALTPIPE_IT_WORKDIR")
    if reuse:
        topo = load_topology(Path(reuse))
        assert topo.status().running, f"SALTPIPE_IT_WORKDIR={reuse}: the topology there is not running"
        yield topo
        return
    workdir = short_tmpdir()
    started = time.monotonic()
    proc = saltpipe("topology", "up", "--workdir", str(workdir), "--format", "json", "--timeout", "120", timeout=300)
    if proc.returncode != 0:
        saltpipe("topology", "down", "--workdir", str(workdir))
        pytest.fail(f"saltpipe topology up failed (rc {proc.returncode}):\n{proc.stderr}\n{proc.stdout}")
    status = json.loads(proc.stdout)
    assert status["state"] == "running", status
    topo = load_topology(workdir)
    topo.timings["session_up_seconds"] = round(time.monotonic() - started, 2)
    yield topo
    proc = saltpipe("topology", "down", "--workdir", str(workdir), "--format", "json")
    final = json.loads(proc.stdout) if proc.stdout.strip() else {}
    survivors = [d["name"] for d in final.get("daemons", []) if d["state"] == "running"]
    if os.environ.get("SALTPIPE_KEEP_TOPOLOGY") != "1" and not survivors:
        shutil.rmtree(workdir, ignore_errors=True)
    assert proc.returncode == 0 and not survivors, f"daemons survived 'topology down': {survivors}\n{proc.stderr}"


@pytest.fixture(scope="session")
def served_content(topology: Topology, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkout's content, served as ``base`` by every syndic master; the tree's path."""
    tree = build_content_tree(tmp_path_factory.mktemp("content") / "tree")
    serve_tree(topology, tree, "checkout")
    return tree
