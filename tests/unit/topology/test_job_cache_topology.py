"""The local topology's job cache without Salt daemons: the minion template names the redis-server only when
given one, the derived pipeline.yaml points environments at it, and a real redis-server starts and stops."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from pipeline.config import load_config, validate_config
from pipeline.config.runtime_policy import load_runtime_policy
from pipeline.saltlib import import_salt
from pipeline.topology.handles import MasterHandle, MinionHandle
from pipeline.topology.build import derive_pipeline_config
from pipeline.topology.redis import INSTALL_HINT, RedisServer, start_redis, stop_redis
from pipeline.topology.render import DaemonTemplates, local_minion_values
from pipeline.topology.spec import load_spec
from pipeline.yamlsrc import load_yaml_text

REPO = Path(__file__).resolve().parents[3]
DAEMONS = REPO / "salt" / "daemons"
salt_config = import_salt("salt.config")


def _minion_opts(tmp_path: Path, job_cache: tuple[str, int] | None) -> dict:
    templates = DaemonTemplates(DAEMONS, load_runtime_policy(DAEMONS / "runtime-policy.yaml"))
    syn = MasterHandle("syn-a", tmp_path / "syn-a", tmp_path / "syn-a" / "conf", tmp_path, interface="127.0.0.1",
                       publish_port=42000, ret_port=42001)
    minion = MinionHandle("web-1", tmp_path / "web-1", tmp_path / "web-1" / "conf", tmp_path, syndic="syn-a",
                          env="test", roles=("web",), datacenter="dc1")
    text = templates.render("minion", **local_minion_values(minion, syn, user="ops", job_cache=job_cache))
    path = tmp_path / "minion"
    path.write_text(text, encoding="utf-8")
    return salt_config.minion_config(str(path))


def test_the_minion_names_the_redis_server_for_salts_returner_only_when_given_one(tmp_path: Path) -> None:
    opts = _minion_opts(tmp_path, ("127.0.0.1", 6390))
    assert (opts["redis.host"], opts["redis.port"], opts["redis.db"]) == ("127.0.0.1", 6390, 0)
    assert "redis.host" not in _minion_opts(tmp_path, None)


def test_the_derived_config_points_environments_at_the_topologys_redis(tmp_path: Path) -> None:
    source = REPO / "salt" / "pipeline.yaml"
    spec = load_spec(REPO / "salt" / "daemons" / "local-topology.yaml", load_config(source))
    server = RedisServer("127.0.0.1", 6390, tmp_path / "redis")

    def derived(**kw) -> dict:
        text = derive_pipeline_config(source, tmp_path, spec, **kw)
        return validate_config(load_yaml_text(text, tmp_path / "p.yaml")).environments

    assert all(env.job_cache is None for env in derived().values())
    assert all(env.job_cache is None for env in derived(job_cache=server).values()), "off unless asked for"
    everywhere = derived(job_cache=server, job_cache_everywhere=True)
    assert {(e.job_cache.host, e.job_cache.port) for e in everywhere.values()} == {("127.0.0.1", 6390)}


def test_a_real_redis_server_starts_answers_and_stops(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"redis-server is missing: {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)
    import redis

    server = start_redis(tmp_path / "redis")
    try:
        db = redis.Redis(host=server.host, port=server.port)
        assert db.ping() and server.pidfile.exists()
        db.close()
    finally:
        stop_redis(server)
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=1).close()
