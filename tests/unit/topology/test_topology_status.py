"""``topology status`` lists the job cache's redis-server beside the Salt daemons, with its pid and state, in the
status model and in the CLI's text and JSON; a pid file naming another program is ``stale``, never ``running``.

No Salt daemon runs here (their states read ``stopped``); the redis-server is a real one (the Debian package)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.topology.daemons import Daemon
from pipeline.topology.handles import MasterHandle
from pipeline.topology.model import Topology
from pipeline.topology.redis import INSTALL_HINT, RedisServer, inspect_redis, start_redis, stop_redis
from pipeline.topology.spec import TopologySpec
from pipeline.topology.state import load, save_state


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"redis-server is missing: {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)
    server = start_redis(tmp_path / "work" / "redis")
    yield server
    stop_redis(server)


def _topology(workdir: Path, job_cache: RedisServer | None) -> Topology:
    """A one-node topology (a MoM, no syndics) whose salt-master is not running."""
    mom = MasterHandle("mom", workdir / "mom", workdir / "mom" / "conf", workdir, interface="127.0.0.1",
                       publish_port=42000, ret_port=42001)
    return Topology(
        workdir=workdir,
        spec=TopologySpec(mom="mom", syndics=()),
        mom=mom,
        syndics=(),
        daemons=(Daemon("mom", "master", mom.root_dir, mom.config_dir),),
        pipeline_config=workdir / "pipeline.yaml",
        bindir=workdir,
        job_cache=job_cache,
    )


def test_the_status_model_lists_the_redis_server_with_its_pid_and_state(redis_server: RedisServer) -> None:
    topo = _topology(redis_server.directory.parent, redis_server)
    status = topo.status()
    cache = status.daemons[-1]
    assert (cache.name, cache.kind, cache.state) == ("redis/redis-server", "redis-server", "running")
    assert cache.pid == int(redis_server.pidfile.read_text().strip())
    assert cache.log_file == redis_server.log_file
    assert status.summary == "degraded", "the MoM is not running, the redis-server is"
    assert status.as_dict()["daemons"][-1] == {
        "name": "redis/redis-server", "node": "redis", "kind": "redis-server", "pid": cache.pid,
        "state": "running", "log_file": str(redis_server.log_file),
    }
    stop_redis(redis_server)
    after = topo.status()
    assert after.daemons[-1].state == "stopped" and after.daemons[-1].pid is None
    assert after.stopped


def test_a_topology_without_a_job_cache_lists_only_salt_daemons(tmp_path: Path) -> None:
    assert [d.name for d in _topology(tmp_path, None).status().daemons] == ["mom/master"]


def test_a_pid_file_naming_another_program_is_stale_and_stop_leaves_that_program_alone(tmp_path: Path) -> None:
    server = RedisServer("127.0.0.1", 6399, tmp_path / "redis")
    server.directory.mkdir()
    server.pidfile.write_text(f"{os.getpid()}\n")  # this pytest process: a reused pid, no redis-server
    status = inspect_redis(server)
    assert (status.state, status.pid) == ("stale", os.getpid())
    stop_redis(server)  # must not signal this process
    assert inspect_redis(server).state == "stopped"


def test_the_cli_prints_the_redis_server_in_text_and_json(redis_server: RedisServer) -> None:
    workdir = redis_server.directory.parent
    save_state(_topology(workdir, redis_server), repo=workdir, ports={"mom": {"publish": 42000, "ret": 42001}}, ready=True)
    assert load(workdir).job_cache == redis_server
    runner = CliRunner()
    pid = int(redis_server.pidfile.read_text().strip())

    as_json = runner.invoke(cli, ["topology", "status", "--workdir", str(workdir), "--format", "json"])
    assert as_json.exit_code == 1, "not every daemon runs"
    data = json.loads(as_json.output)
    entry = {d["name"]: d for d in data["daemons"]}["redis/redis-server"]
    assert (entry["pid"], entry["state"]) == (pid, "running")
    assert data["job_cache"]["url"] == redis_server.url

    as_text = runner.invoke(cli, ["topology", "status", "--workdir", str(workdir)])
    line = next(line for line in as_text.output.splitlines() if "redis/redis-server" in line)
    assert line.split()[:4] == ["redis/redis-server", "running", "pid", str(pid)]
