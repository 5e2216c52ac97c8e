"""The runtime policy on live masters: blacklisted functions are refused by the MoM and by every syndic master,
state.apply and saltutil.sync_* still work, and verify-runtime reports drift in config and in running masters.

Refusals are judged by what reached the minions (returns, side effects), never by the CLI's exit code.
"""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from it_helpers import REPO, saltpipe, short_tmpdir

from pipeline.config.runtime_policy import load_runtime_policy
from pipeline.runtime_policy import PROBE_TARGET
from pipeline.saltlib import import_salt
from pipeline.topology import MasterHandle, Topology
from pipeline.topology import daemons as procs

POLICY = load_runtime_policy(REPO / "salt" / "daemons" / "runtime-policy.yaml")
BLACKLIST_PROBES = [e.probe for e in POLICY.blacklist]


def _masters(topology: Topology) -> list[tuple[MasterHandle, list[str]]]:
    """Each master with the minions a job published there reaches: all of them from the MoM, its own from a
    syndic master."""
    return [(topology.mom, list(topology.minion_ids))] + [(s.master, list(s.minion_ids)) for s in topology.syndics]


class Publisher:
    """Salt's LocalClient on one master, as saltpipe's rollout client uses it."""

    def __init__(self, master: MasterHandle) -> None:
        client, config = import_salt("salt.client"), import_salt("salt.config")
        self.exceptions = import_salt("salt.exceptions")
        self.client = client.LocalClient(mopts=config.client_config(str(master.config_file)))

    def publish(self, minions: list[str], fun: str, arg: tuple[Any, ...] = ()) -> str | dict[str, Any]:
        """``"refused"`` when the master refuses to publish, else the publish data (jid, minions)."""
        try:
            return self.client.run_job(minions, fun, list(arg), tgt_type="list", timeout=10)
        except self.exceptions.AuthorizationError:
            return "refused"


@pytest.fixture(scope="module")
def publishers(topology: Topology) -> Iterator[dict[str, tuple[Publisher, list[str]]]]:
    pubs = {m.id: (Publisher(m), minions) for m, minions in _masters(topology)}
    yield pubs
    for pub, _ in pubs.values():
        pub.client.destroy()


@pytest.mark.parametrize("function", BLACKLIST_PROBES)
def test_every_master_refuses_blacklisted_function(
    publishers: dict[str, tuple[Publisher, list[str]]], function: str
) -> None:
    outcomes = {name: pub.publish(minions, function) for name, (pub, minions) in publishers.items()}
    assert outcomes == {name: "refused" for name in publishers}, outcomes


def test_refused_shell_command_reaches_no_minion(topology: Topology) -> None:
    """cmd.run from the MoM and from each syndic master, through the `salt` CLI as an operator types it: the
    master answers with a refusal, no minion returns, and the command's side effect never happens."""
    marker = Path("/tmp") / f"saltpipe-policy-{uuid.uuid4().hex}"
    try:
        for master, minions in _masters(topology):
            result = master.salt(minions, "cmd.run", f"touch {marker}", timeout=10)
            # The CLI's exit code says nothing here (0 on a refusal); the output and the returns do.
            assert result.refused, f"{master.id}: {result}"
            assert result.returns == {}, f"{master.id}: {result}"
        # Any minion that had run it would have created the file (every minion of the topology is on this host).
        check = topology.mom.salt(list(topology.minion_ids), "file.file_exists", str(marker))
        assert check.returns == {mid: False for mid in topology.minion_ids}, str(check)
        assert not marker.exists()
    finally:
        marker.unlink(missing_ok=True)


def test_compound_call_with_a_blacklisted_function_is_refused(topology: Topology) -> None:
    """A multi-function job is refused as a whole when one of its functions is blacklisted."""
    result = topology.mom.salt(list(topology.minion_ids), "test.ping,cmd.run", ",", "id", timeout=10)
    assert result.refused and result.returns == {}, str(result)


def test_state_apply_is_published_by_every_master(topology: Topology, served_content: Path) -> None:
    for master, minions in _masters(topology):
        result = master.salt(minions, "state.apply", "saltpipe_probe", timeout=60)
        assert set(result.returns) == set(minions), f"{master.id}: {result}"
        for mid, states in result.returns.items():
            assert isinstance(states, dict) and states, f"{master.id} -> {mid}: {states}"
            assert all(s["result"] is True for s in states.values()), f"{master.id} -> {mid}: {states}"


@pytest.mark.parametrize("function", ["saltutil.sync_all", "saltutil.sync_modules", "saltutil.sync_states"])
def test_saltutil_sync_is_published_by_every_master(topology: Topology, served_content: Path, function: str) -> None:
    for master, minions in _masters(topology):
        result = master.salt(minions, function, timeout=60)
        assert set(result.returns) == set(minions), f"{master.id}: {result}"
        for mid, ret in result.returns.items():
            # A sync returns what it synced: a dict per type for sync_all, a list for one type.
            assert isinstance(ret, (dict, list)), f"{master.id} -> {mid}: {ret}"


# ----------------------------------------------------------------------------------------------------------
# verify-runtime


def _verify(*args: str) -> tuple[int, dict[str, Any]]:
    proc = saltpipe("policy", "verify-runtime", "--format", "json", *args)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_verify_runtime_finds_no_drift_on_the_topology(topology: Topology) -> None:
    rc, report = _verify("--workdir", str(topology.workdir))
    assert rc == 0 and report["ok"], report
    assert [m["name"] for m in report["masters"]] == [m.id for m in topology.masters]
    for master in report["masters"]:
        assert master["probed"] and master["drift"] == []
        assert master["checks"] == 2 * len(POLICY.blacklist) + len(POLICY.settings) + len(POLICY.allowed)


def test_verify_runtime_reports_config_drift_of_one_syndic_master(topology: Topology) -> None:
    """A master.d/ override that drops most of the blacklist and opens peer publishing: drift in that master's
    effective config; its running process (not restarted) still refuses, so no drift there."""
    syndic = topology.syndics[-1]
    override = syndic.master.config_dir / "master.d" / "zz-local-override.conf"
    override.parent.mkdir(exist_ok=True)
    override.write_text('publisher_acl_blacklist:\n  modules: ["cmd.*"]\npeer:\n  ".*": ["test.*"]\n', encoding="utf-8")
    try:
        rc, report = _verify("--workdir", str(topology.workdir))
    finally:
        override.unlink()
    assert rc == 1 and not report["ok"]
    by_name = {m["name"]: m for m in report["masters"]}
    assert all(by_name[m.id]["drift"] == [] for m in topology.masters if m.id != syndic.id)
    drift = by_name[syndic.id]["drift"]
    assert {d["where"] for d in drift} == {"config"}
    missing = {d["subject"] for d in drift if d["check"] == "blacklist-missing"}
    assert missing == set(POLICY.patterns) - {"cmd.*"}
    assert [d["subject"] for d in drift if d["check"] == "setting"] == ["peer"]
    # And once the override is gone the master is clean again.
    rc, report = _verify("--master-config", str(syndic.master.config_dir))
    assert rc == 0 and report["ok"], report


@pytest.fixture()
def rogue_master(topology: Topology) -> Iterator[Path]:
    """A master set up by hand, without saltpipe's template (so without the runtime policy), running."""
    root = short_tmpdir()
    conf = root / "conf"
    conf.mkdir()
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    (conf / "master").write_text(
        f"id: rogue\nuser: {getpass.getuser()}\nroot_dir: {root}\ninterface: 127.0.0.1\n"
        f"publish_port: {ports[0]}\nret_port: {ports[1]}\nworker_threads: 2\n",
        encoding="utf-8",
    )
    daemon = procs.Daemon("rogue", "master", root, conf)
    proc = procs.spawn(daemon, topology.bindir)
    try:
        _wait_publishing(conf / "master", proc)
        yield conf
    finally:
        procs.stop([(daemon, proc.pid)])
        proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _wait_publishing(config_file: Path, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    """Until the master answers a publish (its workers are up), publishing test.ping to a target no one has."""
    client_mod, config, exceptions = (import_salt(n) for n in ("salt.client", "salt.config", "salt.exceptions"))
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"rogue master exited with {proc.returncode}"
        # A new client each time: it reads the master's root key when created, and a starting master has
        # not written it yet (AuthenticationError until then).
        client = client_mod.LocalClient(mopts=config.client_config(str(config_file)))
        try:
            client.pub(PROBE_TARGET, "test.ping", tgt_type="list", timeout=3)
            return
        except (exceptions.SaltClientError, exceptions.SaltReqTimeoutError, exceptions.AuthenticationError):
            assert time.monotonic() < deadline, "rogue master never answered"
            time.sleep(0.5)  # polling interval of the readiness check above
        finally:
            client.destroy()


def test_verify_runtime_reports_a_running_master_that_publishes_blacklisted_functions(rogue_master: Path) -> None:
    rc, report = _verify("--master-config", str(rogue_master))
    assert rc == 1 and not report["ok"]
    (master,) = report["masters"]
    running = {d["subject"] for d in master["drift"] if d["where"] == "running"}
    assert running == set(BLACKLIST_PROBES), master["drift"]
    assert {d["check"] for d in master["drift"] if d["where"] == "running"} == {"probe-accepted"}
    config = {d["subject"] for d in master["drift"] if d["check"] == "blacklist-missing"}
    assert config == set(POLICY.patterns)


def test_verify_runtime_config_only_publishes_nothing(topology: Topology) -> None:
    rc, report = _verify("--workdir", str(topology.workdir), "--no-probe")
    assert rc == 0 and all(not m["probed"] for m in report["masters"]), report
