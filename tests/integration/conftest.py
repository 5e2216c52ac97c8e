"""Integration tests on real Salt daemons: ONE local topology (MoM -> 3 syndic masters -> 8 minions) per session.

Beside it runs a real ``redis-server`` (the external job cache, docs/job-cache.md): every minion's config names
it for Salt's ``redis`` returner, which writes only for jobs that ask for it (``ret: redis``), so tests without a
``job_cache`` see the topology as before. Under ``CI=true`` a missing redis-server fails the session with what to
install; elsewhere the session runs without one and the job-cache tests skip.

The session's topology runs on pytest-salt-factories (:func:`pipeline.topology.factories.factories_up`): every
daemon's config is rendered from the same ``salt/daemons`` templates as ``saltpipe topology up`` renders, and
only factories' own paths, ports and engine settings are added (docs/topology.md, "Integration tests"). The
tests get the same :class:`~pipeline.topology.Topology` API either way. The CLI path (``saltpipe topology up``
in a subprocess, ``status`` from another process, ``down``) is proven by test_topology.py with a topology of its
own, run before the session's (see :func:`pytest_collection_modifyitems`), so two never run at once.

Every result is judged from the returns against the expected minion set, never from a CLI exit code
(``salt`` exits 0 when a master refuses a call).

Environment: ``SALTPIPE_KEEP_TOPOLOGY=1`` keeps the work directory (configs, logs) after the session;
``SALTPIPE_IT_WORKDIR=<dir>`` runs the tests on a topology already running there (started with ``saltpipe
topology up``) instead of starting one.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from it_helpers import REPO, build_content_tree, serve_tree, short_tmpdir

from pipeline.errors import TopologyError
from pipeline.topology import Topology
from pipeline.topology import load as load_topology
from pipeline.topology.redis import INSTALL_HINT, RedisServer, start_redis, stop_redis

#: Fixture of test_topology.py that runs a topology with the CLI; its tests run first (see below).
CLI_TOPOLOGY_FIXTURE = "cli_topology"

_TIMINGS: dict[str, float] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark everything under tests/integration ``integration``; run the CLI topology's tests first.

    The CLI tests start their own 15 daemons; the session topology starts at the first test that needs it and
    runs to the end of the session. Running the CLI tests first (a stable sort, everything else keeps its
    order) means the two never run at once on this 2-core machine.
    """
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: 0 if CLI_TOPOLOGY_FIXTURE in getattr(item, "fixturenames", ()) else 1)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print how long the session topology took to start and to stop (docs/topology.md records them)."""
    if _TIMINGS:
        terminalreporter.write_line(
            "saltpipe session topology: " + ", ".join(f"{k} {v:.1f}s" for k, v in _TIMINGS.items())
        )


@pytest.fixture(scope="session")
def topology(salt_factories: Any) -> Iterator[Topology]:
    """The session's topology on pytest-salt-factories, ready (every minion answered ``test.ping`` from the
    MoM through its syndic); terminated at the end of the session, which fails if a daemon survives.

    With ``SALTPIPE_IT_WORKDIR`` set to the work directory of a running topology, that one is used and left
    running (for iterating on tests; CI never sets it).
    """
    reuse = os.environ.get("SALTPIPE_IT_WORKDIR")
    if reuse:
        topo = load_topology(Path(reuse))
        assert topo.status().running, f"SALTPIPE_IT_WORKDIR={reuse}: the topology there is not running"
        yield topo
        return
    from pipeline.topology.factories import factories_up  # pylint: disable=import-outside-toplevel

    workdir = short_tmpdir()
    started = time.monotonic()
    cache = _job_cache(workdir)
    try:
        topo = factories_up(salt_factories, workdir, repo=REPO, timeout=240, job_cache=cache)
    except BaseException:
        if cache is not None:
            stop_redis(cache)
        raise
    _TIMINGS["ready"] = time.monotonic() - started
    topo.timings["session_up_seconds"] = round(_TIMINGS["ready"], 2)
    yield topo
    stopping = time.monotonic()
    final = topo.stop()
    _TIMINGS["stop"] = time.monotonic() - stopping
    survivors = [d.name for d in final.daemons if d.state == "running"]
    if os.environ.get("SALTPIPE_KEEP_TOPOLOGY") != "1" and not survivors:
        shutil.rmtree(workdir, ignore_errors=True)
    assert not survivors, f"daemons survived the end of the session: {survivors}"


def _job_cache(workdir: Path) -> RedisServer | None:
    """The session's redis-server; ``None`` outside CI when redis-server is not installed."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"redis-server is missing (the job-cache integration tests need it): {INSTALL_HINT}")
        return None
    try:
        return start_redis(workdir / "redis")
    except TopologyError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def job_cache(topology: Topology) -> RedisServer:
    """The session topology's redis-server (skips outside CI when redis-server is not installed)."""
    if topology.job_cache is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the session topology runs without a job cache: {INSTALL_HINT}")
        pytest.skip(f"no redis-server: {INSTALL_HINT}")
    return topology.job_cache


@pytest.fixture(scope="session")
def served_content(topology: Topology, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkout's content, served as ``base`` by every syndic master; the tree's path."""
    tree = build_content_tree(tmp_path_factory.mktemp("content") / "tree")
    serve_tree(topology, tree, "checkout")
    return tree
