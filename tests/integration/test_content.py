"""The bundled content on real minions: sync the custom modules, apply every formula (sandboxed by the local
topology's pillar, docs/topology.md), assert every state, apply again for no changes, and run every function
of ``_modules/`` and ``_states/`` at least once.

Everything is published from the MoM through the syndics, the way a rollout does it, and judged per minion.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from it_helpers import REPO

from pipeline.topology import SaltResult, Topology
from pipeline.topology.pillar import formulas

FORMULAS = formulas(REPO)
CUSTOM_MODULES = sorted(p.stem for p in (REPO / "_modules").glob("*.py"))
CUSTOM_STATES = sorted(p.stem for p in (REPO / "_states").glob("*.py"))
POOL = "saltpipe-it-pool"
ABSENT_SERVICE = "saltpipe-it-no-such-service"

#: Every function the tests below run on real minions; test_every_custom_function_is_covered holds this
#: against what the minions actually load, so a new function without a test fails the suite.
COVERED = {
    "ops_lb.status": "test_ops_lb_pull_out_and_in",
    "ops_lb.pull_out": "test_ops_lb_pull_out_and_in",
    "ops_lb.pull_in": "test_ops_lb_pull_out_and_in",
    "ops_patch.check": "test_ops_patch_check",
    "ops_patch.install": "test_ops_patch_install",
    "ops_app.status": "test_ops_app_status_and_restart_of_an_absent_service",
    "ops_app.restart": "test_ops_app_status_and_restart_of_an_absent_service",
    "ops_app.ignite": "test_ops_app_ignite",
    "ops_app.health": "test_ops_app_health",
    "ops_node.pulled_out": "test_ops_node_pull_out_and_in_states",
    "ops_node.pulled_in": "test_ops_node_pull_out_and_in_states",
    "ops_node.patched": "test_ops_node_patched_state",
    "ops_node.service_restarted": "test_ops_node_service_restarted_state",
    "ops_node.ignited": "test_ops_node_ignited_state",
}


def _failures(states: Any) -> list[str]:
    if not isinstance(states, dict):
        return [f"not a state return: {states!r}"]
    return [f"{key}: {ret.get('comment')}" for key, ret in states.items() if ret.get("result") is not True]


def _state_name(key: str) -> str:
    # A state return key is "<module>_|-<id>_|-<name>_|-<function>".
    return key.split("_|-")[2]


@pytest.fixture(scope="module")
def targets(topology: Topology) -> list[str]:
    """One minion behind each syndic: the functions run through every syndic."""
    return [s.minions[0].id for s in topology.syndics]


@pytest.fixture(scope="module")
def synced(topology: Topology, served_content: Path) -> None:
    """saltutil.sync_all from the MoM; every minion then has the custom modules and states loaded."""
    everyone = list(topology.minion_ids)
    result = topology.mom.salt(everyone, "saltutil.sync_all", timeout=120)
    assert set(result.returns) == set(everyone), str(result)
    modules = topology.mom.salt(everyone, "sys.list_modules", timeout=30)
    states = topology.mom.salt(everyone, "sys.list_state_modules", timeout=30)
    for mid in everyone:
        assert set(CUSTOM_MODULES) <= set(modules.returns.get(mid, [])), f"{mid}: {modules}"
        assert set(CUSTOM_STATES) <= set(states.returns.get(mid, [])), f"{mid}: {states}"


@pytest.fixture(scope="module")
def highstates(topology: Topology, synced: None) -> tuple[SaltResult, SaltResult]:
    """The highstate (every formula top.sls gives each minion) applied twice from the MoM."""
    everyone = list(topology.minion_ids)
    first = topology.mom.salt(everyone, "state.apply", timeout=600)
    second = topology.mom.salt(everyone, "state.apply", timeout=600)
    return first, second


def test_content_exists() -> None:
    """The suite below is only meaningful with content: fail loudly rather than pass on nothing."""
    assert FORMULAS and CUSTOM_MODULES and CUSTOM_STATES, (FORMULAS, CUSTOM_MODULES, CUSTOM_STATES)


def test_highstate_applies_every_formula_on_every_minion(
    topology: Topology, highstates: tuple[SaltResult, SaltResult]
) -> None:
    first, _ = highstates
    assert set(first.returns) == set(topology.minion_ids), str(first)
    failures = {mid: _failures(states) for mid, states in first.returns.items()}
    assert not any(failures.values()), failures
    applied = {ret["__sls__"].split(".")[0] for states in first.returns.values() for ret in states.values()}
    assert applied == set(FORMULAS), f"formulas never applied: {set(FORMULAS) - applied}"


def test_highstate_follows_the_roles(topology: Topology, highstates: tuple[SaltResult, SaltResult]) -> None:
    """top.sls: base and patching everywhere, nginx on web minions, app on app minions."""
    first, _ = highstates
    for minion in topology.minions:
        formulas_here = {ret["__sls__"].split(".")[0] for ret in first.returns[minion.id].values()}
        expected = {"base", "patching"} | ({"nginx"} if "web" in minion.roles else set())
        expected |= {"app"} if "app" in minion.roles else set()
        assert formulas_here == expected, minion.id


def test_second_highstate_changes_nothing(topology: Topology, highstates: tuple[SaltResult, SaltResult]) -> None:
    first, second = highstates
    assert set(second.returns) == set(topology.minion_ids), str(second)
    for mid, states in second.returns.items():
        assert _failures(states) == [], mid
        changed = {key: ret["changes"] for key, ret in states.items() if ret["changes"]}
        assert changed == {}, f"{mid} is not idempotent: {changed}"
        assert set(states) == set(first.returns[mid]), f"{mid}: a different set of states ran the second time"


def test_files_stay_in_each_minions_sandbox(topology: Topology, highstates: tuple[SaltResult, SaltResult]) -> None:
    first, _ = highstates
    for minion in topology.minions:
        paths = [
            _state_name(key)
            for key in first.returns[minion.id]
            if key.startswith("file_|-") and _state_name(key).startswith("/")
        ]
        assert paths, f"{minion.id}: no file states ran"
        outside = [p for p in paths if not Path(p).is_relative_to(minion.sandbox)]
        assert outside == [], f"{minion.id} wrote outside {minion.sandbox}: {outside}"
        assert any(minion.sandbox.rglob("*")), minion.id


# ----------------------------------------------------------------------------------------------------------
# Every custom function on real minions


class _Handler(BaseHTTPRequestHandler):
    """/ok answers 200; /status/<code> answers <code>."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        code = 200
        if self.path.startswith("/status/"):
            code = int(self.path.rsplit("/", 1)[1])
        body = b"ok\n" if code == 200 else b"not ready\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    """A loopback HTTP server (the minions run on this host): what an application's health endpoint would be."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def it_pillar(topology: Topology, targets: list[str], http_base: str, synced: None) -> Iterator[None]:
    """Pillar overrides on the target minions: a patch set the host cannot satisfy, and a health URL."""
    for mid in targets:
        topology.set_pillar(
            mid,
            {"ops": {"app": {"health_url": f"{http_base}/ok"}, "patch": {"sets": {"it-missing": {"bash": "999"}}}}},
        )
    refresh = topology.mom.salt(targets, "saltutil.refresh_pillar", timeout=60)
    assert set(refresh.returns) == set(targets), str(refresh)
    yield
    for mid in targets:
        topology.set_pillar(mid, {})
    topology.mom.salt(targets, "saltutil.refresh_pillar", timeout=60)


def _call(topology: Topology, targets: list[str], fun: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    result = topology.mom.salt(targets, fun, *args, timeout=60, **kwargs)
    assert set(result.returns) == set(targets), str(result)
    return result.returns


def _apply(topology: Topology, targets: list[str], sls: str, test: bool = False, **it: Any) -> dict[str, dict[str, Any]]:
    """Apply one of the tests' SLS (tests/integration/sls/saltpipe_it/) and return each minion's single state."""
    kwargs: dict[str, Any] = {"pillar": {"saltpipe_it": it}}
    if test:
        kwargs["test"] = True
    returns = _call(topology, targets, "state.apply", f"saltpipe_it.{sls}", **kwargs)
    out = {}
    for mid, states in returns.items():
        assert isinstance(states, dict) and len(states) == 1, f"{mid}: {states}"
        out[mid] = next(iter(states.values()))
    return out


def test_every_custom_function_is_covered(topology: Topology, targets: list[str], synced: None) -> None:
    loaded = _call(topology, targets[:1], "sys.list_functions", *CUSTOM_MODULES)[targets[0]]
    loaded += _call(topology, targets[:1], "sys.list_state_functions", *CUSTOM_STATES)[targets[0]]
    assert sorted(loaded) == sorted(COVERED), "add a test (and a COVERED entry) for each new function"


def test_ops_lb_pull_out_and_in(topology: Topology, targets: list[str], synced: None) -> None:
    status = _call(topology, targets, "ops_lb.status", POOL)
    for mid, st in status.items():
        minion = topology.minion(mid)
        assert st["in_pool"] is True and st["reason"] is None, (mid, st)
        assert Path(st["flag"]).is_relative_to(minion.sandbox), (mid, st)
    out = _call(topology, targets, "ops_lb.pull_out", POOL, reason="integration test")
    assert all(r["result"] is True and r["changes"] for r in out.values()), out
    again = _call(topology, targets, "ops_lb.pull_out", POOL, reason="integration test")
    assert all(r["result"] is True and not r["changes"] for r in again.values()), again
    status = _call(topology, targets, "ops_lb.status", POOL)
    assert all(st["in_pool"] is False and st["reason"] == "integration test" for st in status.values()), status
    back = _call(topology, targets, "ops_lb.pull_in", POOL)
    assert all(r["result"] is True and r["changes"] for r in back.values()), back
    again = _call(topology, targets, "ops_lb.pull_in", POOL)
    assert all(r["result"] is True and not r["changes"] for r in again.values()), again
    status = _call(topology, targets, "ops_lb.status", POOL)
    assert all(st["in_pool"] is True for st in status.values()), status


def test_ops_patch_check(topology: Topology, targets: list[str], it_pillar: None) -> None:
    ok = _call(topology, targets, "ops_patch.check", "sandbox")
    assert all(r["compliant"] is True and r["missing"] == {} for r in ok.values()), ok
    missing = _call(topology, targets, "ops_patch.check", "it-missing")
    for mid, r in missing.items():
        assert r["compliant"] is False, (mid, r)
        assert set(r["missing"]) == {"bash"} and r["missing"]["bash"]["required"] == "999", (mid, r)
        assert r["missing"]["bash"]["installed"], (mid, r)  # the host's real bash version


def test_ops_patch_install(topology: Topology, targets: list[str], it_pillar: None) -> None:
    nothing = _call(topology, targets, "ops_patch.install", "sandbox")
    assert all(r["result"] is True and not r["changes"] for r in nothing.values()), nothing
    # Only in test mode for a set the host lacks: a real run would ask the host's package manager for bash 999.
    would = _call(topology, targets, "ops_patch.install", "it-missing", test=True)
    for mid, r in would.items():
        assert r["result"] is None and "bash" in str(r["changes"]) + r["comment"], (mid, r)


def test_ops_app_status_and_restart_of_an_absent_service(topology: Topology, targets: list[str], synced: None) -> None:
    status = _call(topology, targets, "ops_app.status", ABSENT_SERVICE)
    assert all(s == {"name": ABSENT_SERVICE, "running": False, "enabled": False} for s in status.values()), status
    restart = _call(topology, targets, "ops_app.restart", ABSENT_SERVICE)
    for mid, r in restart.items():
        assert r["result"] is False and ABSENT_SERVICE in r["comment"], (mid, r)
    dry = _call(topology, targets, "ops_app.restart", ABSENT_SERVICE, test=True)
    assert all(r["result"] is not True for r in dry.values()), dry


def test_ops_app_ignite(topology: Topology, targets: list[str], http_base: str, synced: None) -> None:
    warm = _call(topology, targets, "ops_app.ignite", f"{http_base}/ok", retries=3, interval=0)
    assert all(r["result"] is True and r["attempts"] == 1 and r["status"] == 200 for r in warm.values()), warm
    cold = _call(topology, targets, "ops_app.ignite", f"{http_base}/status/503", retries=3, interval=0)
    assert all(r["result"] is False and r["attempts"] == 3 and r["status"] == 503 for r in cold.values()), cold
    dry = _call(topology, targets, "ops_app.ignite", f"{http_base}/ok", test=True)
    assert all(r["result"] is None and r["attempts"] == 0 for r in dry.values()), dry


def test_ops_app_health(topology: Topology, targets: list[str], http_base: str, it_pillar: None) -> None:
    assert _call(topology, targets, "ops_app.health", f"{http_base}/ok") == {mid: True for mid in targets}
    assert _call(topology, targets, "ops_app.health", f"{http_base}/status/500") == {mid: False for mid in targets}
    # The default URL comes from pillar (ops:app:health_url), as the rollout's health check calls it.
    assert _call(topology, targets, "ops_app.health") == {mid: True for mid in targets}


def test_ops_node_pull_out_and_in_states(topology: Topology, targets: list[str], synced: None) -> None:
    out = _apply(topology, targets, "pulled_out", pool=POOL)
    assert all(r["result"] is True and r["changes"] for r in out.values()), out
    again = _apply(topology, targets, "pulled_out", pool=POOL)
    assert all(r["result"] is True and not r["changes"] for r in again.values()), again
    dry = _apply(topology, targets, "pulled_in", test=True, pool=POOL)
    assert all(r["result"] is None and r["changes"] for r in dry.values()), dry
    back = _apply(topology, targets, "pulled_in", pool=POOL)
    assert all(r["result"] is True and r["changes"] for r in back.values()), back
    status = _call(topology, targets, "ops_lb.status", POOL)
    assert all(st["in_pool"] is True for st in status.values()), status


def test_ops_node_patched_state(topology: Topology, targets: list[str], it_pillar: None) -> None:
    done = _apply(topology, targets, "patched", patchset="sandbox")
    assert all(r["result"] is True and not r["changes"] for r in done.values()), done
    would = _apply(topology, targets, "patched", test=True, patchset="it-missing")
    assert all(r["result"] is None and r["changes"] for r in would.values()), would


def test_ops_node_service_restarted_state(topology: Topology, targets: list[str], synced: None) -> None:
    failed = _apply(topology, targets, "restarted", service=ABSENT_SERVICE)
    assert all(r["result"] is False and ABSENT_SERVICE in r["comment"] for r in failed.values()), failed
    dry = _apply(topology, targets, "restarted", test=True, service=ABSENT_SERVICE)
    assert all(r["result"] is not True for r in dry.values()), dry


def test_ops_node_ignited_state(topology: Topology, targets: list[str], http_base: str, synced: None) -> None:
    warm = _apply(topology, targets, "ignited", url=f"{http_base}/ok")
    assert all(r["result"] is True and not r["changes"] for r in warm.values()), warm
    cold = _apply(topology, targets, "ignited", url=f"{http_base}/status/503", retries=2)
    assert all(r["result"] is False for r in cold.values()), cold
