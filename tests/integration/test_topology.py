"""The local topology itself: its shape maps onto salt/pipeline.yaml, jobs and files flow MoM -> syndic -> minion,
its daemons run the configs rendered from salt/daemons; and the CLI path: ``saltpipe topology up`` in a subprocess,
``status`` from another process, ``down`` leaves no daemon.

The ``cli_topology`` tests run before every other integration test (conftest.py reorders them), on a topology of
their own that is down before the session's starts.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from pipeline.config import load_config
from pipeline.errors import TopologyError
from pipeline.topology import Topology, load, load_spec, up

from it_helpers import REPO, saltpipe, serve_tree, short_tmpdir


def test_every_minion_answers_from_the_mom_through_its_syndic(topology: Topology) -> None:
    result = topology.mom.salt(list(topology.minion_ids), "test.ping", timeout=15)
    assert result.returns == {mid: True for mid in topology.minion_ids}, str(result)


def test_shape_is_the_spec_of_the_checkout(topology: Topology) -> None:
    config = load_config(REPO / "salt" / "pipeline.yaml")
    spec = load_spec(REPO / "salt" / "daemons" / "local-topology.yaml", config)
    assert topology.spec == spec
    for env in config.environments.values():
        assert {s.id for s in topology.syndics if s.env == env.name} == {s.name for s in env.syndics}


@pytest.mark.parametrize("env", ["test", "production"])
def test_environment_target_resolves_to_its_syndics_minions(topology: Topology, env: str) -> None:
    """What a rollout resolves: the environment's compound target, published from the MoM."""
    config = topology.load_pipeline_config()
    target = config.environment(env).target
    result = topology.mom.salt(target, "grains.item", "saltpipe_env", "roles", "datacenter", tgt_type="compound")
    expected = {m.id: m for m in topology.minions if m.env == env}
    assert set(result.returns) == set(expected), str(result)
    for mid, grains in result.returns.items():
        minion = expected[mid]
        assert grains == {
            "saltpipe_env": env,
            "roles": list(minion.roles),
            "datacenter": minion.datacenter,
        }, mid


def test_each_syndic_master_reaches_exactly_its_own_minions(topology: Topology) -> None:
    for syndic in topology.syndics:
        result = syndic.master.salt("*", "test.ping", timeout=10)
        assert set(result.returns) == set(syndic.minion_ids), f"{syndic.id}: {result}"


def test_keys_are_accepted_as_an_operator_would(topology: Topology) -> None:
    """auto_accept stays off (as in production): the keys were pre-seeded into each master's accepted set, so
    the MoM knows only the syndics and each syndic master only its minions (no minion runs on a syndic node)."""
    mom_keys = topology.mom.salt_key("-L")
    assert set(mom_keys.data["minions"]) == {s.id for s in topology.syndics}, str(mom_keys)
    assert mom_keys.data["minions_pre"] == [], str(mom_keys)
    for syndic in topology.syndics:
        keys = syndic.master.salt_key("-L")
        assert set(keys.data["minions"]) == set(syndic.minion_ids), str(keys)


def test_minions_get_files_from_their_own_syndic_not_the_mom(topology: Topology, tmp_path: Path) -> None:
    """Each syndic master serves its own file_roots: the same salt:// path gives each minion its syndic's file."""
    # A private tree per syndic, exposed as its own saltenv so `base` (the shared content) is untouched.
    for syndic in topology.syndics:
        tree = tmp_path / syndic.id
        tree.mkdir()
        (tree / "whoami.txt").write_text(f"served by {syndic.id}\n", encoding="utf-8")
        syndic.saltenv_dir("topotest").parent.mkdir(parents=True, exist_ok=True)
        syndic.saltenv_dir("topotest").unlink(missing_ok=True)
        syndic.saltenv_dir("topotest").symlink_to(tree)
        assert syndic.master.salt_run("fileserver.update").data is True
    try:
        result = topology.mom.salt(
            list(topology.minion_ids), "cp.get_file_str", "salt://whoami.txt", saltenv="topotest", timeout=20
        )
        expected = {m.id: f"served by {m.syndic}\n" for m in topology.minions}
        assert result.returns == expected, str(result)
    finally:
        for syndic in topology.syndics:
            syndic.saltenv_dir("topotest").unlink(missing_ok=True)


def test_derived_pipeline_config_points_at_the_local_file_roots(topology: Topology) -> None:
    original = load_config(REPO / "salt" / "pipeline.yaml")
    derived = topology.load_pipeline_config()
    assert list(derived.environments) == list(original.environments)
    for name, env in derived.environments.items():
        source = original.environments[name]
        assert (env.target, env.canary, env.batches, env.gates) == (source.target, source.canary, source.batches, source.gates)
        for syndic in env.syndics:
            assert syndic.file_roots.type == "local"
            assert syndic.file_roots.path == topology.syndic(syndic.name).file_roots
            assert syndic.file_roots.path.is_dir()
    # The CLI accepts it like any config.
    proc = saltpipe("--config", str(topology.pipeline_config), "config", "check", "--format", "json")
    assert proc.returncode == 0, proc.stderr


def test_new_file_is_served_once_the_file_list_is_refreshed(topology: Topology, tmp_path: Path) -> None:
    """The cache behaviour later stages rely on: after fileserver.update a new file is served at once."""
    syndic = topology.syndics[0]
    tree = tmp_path / "tree"
    tree.mkdir()
    link = syndic.saltenv_dir("topofresh")
    link.unlink(missing_ok=True)
    link.symlink_to(tree)
    try:
        assert syndic.master.salt_run("fileserver.update").data is True
        (tree / "late.txt").write_text("late\n", encoding="utf-8")
        assert syndic.master.salt_run("fileserver.update").data is True
        result = syndic.master.salt(list(syndic.minion_ids), "cp.get_file_str", "salt://late.txt", saltenv="topofresh")
        assert result.returns == {mid: "late\n" for mid in syndic.minion_ids}, str(result)
    finally:
        link.unlink(missing_ok=True)


def test_serving_content_switches_every_syndic(topology: Topology, tmp_path: Path) -> None:
    """The test helper that stands in for sync switches `current` on every syndic and the minions see it."""
    previous = {s.id: s.served_base.resolve() if s.served_base.exists() else None for s in topology.syndics}
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "marker.txt").write_text("switched\n", encoding="utf-8")
    serve_tree(topology, tree, "topotest-switch")
    try:
        result = topology.mom.salt(list(topology.minion_ids), "cp.get_file_str", "salt://marker.txt", timeout=20)
        assert result.returns == {mid: "switched\n" for mid in topology.minion_ids}, str(result)
    finally:
        for syndic in topology.syndics:
            before = previous[syndic.id]
            if before is not None:
                tmp = syndic.file_roots / ".restore.tmp"
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(before)
                tmp.replace(syndic.served_base)
            else:
                syndic.served_base.unlink(missing_ok=True)
            assert syndic.master.salt_run("fileserver.update").data is True


def test_salt_call_on_a_minion_uses_its_syndic_master(topology: Topology) -> None:
    """salt-call with a minion's config: its grains, and pillar compiled by its own syndic master."""
    minion = topology.minion("test-web-1")
    grains = minion.salt_call("grains.get", "saltpipe_env")
    assert grains.data == {"local": "test"}, str(grains)
    pillar = minion.salt_call("pillar.get", "base:root")
    assert pillar.data == {"local": str(minion.sandbox)}, str(pillar)


def test_daemons_run_the_configs_rendered_from_salt_daemons(topology: Topology) -> None:
    """One source of truth: every key a template sets is in the config the daemon runs with, unchanged; factories
    adds only its own keys (pipeline/topology/factories.py: FACTORIES_KEYS, docs/topology.md)."""
    rendered = getattr(topology, "rendered", None)
    if not rendered:
        pytest.skip("the session topology was not started by factories_up (SALTPIPE_IT_WORKDIR)")
    from pipeline.topology.factories import FACTORIES_KEYS  # pylint: disable=import-outside-toplevel

    assert len(rendered) == 1 + 3 * len(topology.syndics) + len(topology.minions)
    for path, template in rendered.items():
        running = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert {k: running.get(k) for k in template} == template, path
        role = "minion" if path.name == "minion" else "syndic" if path.name == "syndic.conf" else "master"
        assert set(running) - set(template) <= FACTORIES_KEYS[role], (path, sorted(set(running) - set(template) - FACTORIES_KEYS[role]))


# ---- the CLI path: its own topology, started and stopped by `saltpipe topology` in subprocesses ----------------


@pytest.fixture(scope="module")
def cli_topology() -> Iterator[Path]:
    """A topology started by ``saltpipe topology up`` in a subprocess that has exited; its work directory.

    Torn down with ``down`` if a test left it running (test_cli_down_leaves_no_daemon normally stops it)."""
    workdir = short_tmpdir()
    # With the job cache where redis-server is installed (conftest.py fails the session without it under CI):
    # status must list it beside the daemons.
    cache = ["--job-cache"] if shutil.which("redis-server") else []
    proc = saltpipe(
        "topology", "up", "--workdir", str(workdir), "--format", "json", "--timeout", "120", *cache, timeout=300
    )
    if proc.returncode != 0:
        saltpipe("topology", "down", "--workdir", str(workdir))
        pytest.fail(f"saltpipe topology up failed (rc {proc.returncode}):\n{proc.stderr}\n{proc.stdout}")
    assert json.loads(proc.stdout)["state"] == "running", proc.stdout
    yield workdir
    if not load(workdir).status().stopped:
        saltpipe("topology", "down", "--workdir", str(workdir))
    shutil.rmtree(workdir, ignore_errors=True)


def test_cli_status_from_another_process_finds_every_daemon(cli_topology: Path) -> None:
    """`up` ran in a process that has exited; `status` (another process) finds each daemon from its pid file
    (and the job cache's redis-server, when it runs one), and every minion answers through its syndic."""
    proc = saltpipe("topology", "status", "--workdir", str(cli_topology), "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = json.loads(proc.stdout)
    names = {d["name"]: d for d in status["daemons"]}
    topo = load(cli_topology)
    expected = {f"{topo.mom.id}/master"}
    for syndic in topo.syndics:
        expected |= {f"{syndic.id}/master", f"{syndic.id}/syndic"} | {f"{m}/minion" for m in syndic.minion_ids}
    if topo.job_cache is not None:
        expected.add("redis/redis-server")
        assert status["job_cache"]["url"] == topo.job_cache.url
    assert set(names) == expected
    for daemon in names.values():
        assert daemon["state"] == "running" and isinstance(daemon["pid"], int), daemon
    assert status["state"] == "running"
    result = topo.ping(timeout=15)
    assert result.returns == {mid: True for mid in topo.minion_ids}, str(result)


def test_cli_up_refuses_a_workdir_whose_topology_runs(cli_topology: Path) -> None:
    with pytest.raises(TopologyError, match="already running"):
        up(cli_topology, repo=REPO)


def test_cli_down_leaves_no_daemon(cli_topology: Path) -> None:
    pids = [d.pid for d in load(cli_topology).status().daemons if d.pid is not None]
    family = set(pids)
    for pid in pids:
        try:
            family |= {c.pid for c in psutil.Process(pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            pass
    proc = saltpipe("topology", "down", "--workdir", str(cli_topology), "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    final = json.loads(proc.stdout)
    assert final["state"] == "stopped", final
    alive = []
    for pid in sorted(family):
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    assert alive == [], f"processes of the topology left after down: {alive}"
