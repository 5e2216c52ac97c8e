"""
The ``ops_node`` states wired to the real ``ops_lb``, ``ops_patch`` and
``ops_app`` execution modules (not mocks of them), in the patch workflow's
order: pull out -> patch -> restart -> ignite -> pull in.

This proves the contract between the two layers (argument names, the test
flag, return shapes) that the per-module tests check separately. Below the
execution modules: Salt's real ``file`` functions on a temporary drain
directory, the conftest's package database, and mocked ``service``/``http``.
Requisites are the state engine's job; here ``onchanges`` is spelled out.
"""

from unittest.mock import MagicMock

import pytest
import salt.modules.file as salt_file

URL = "http://127.0.0.1:8080/health"


@pytest.fixture
def drain_dir(tmp_path):
    return tmp_path / "lb-drain"


@pytest.fixture
def packages(fake_packages):
    return fake_packages(installed={"openssl": "3.0.11-1"})


@pytest.fixture
def http_query():
    return MagicMock(side_effect=[{"status": 0, "error": "refused"}, {"status": 200}] * 10)


@pytest.fixture
def configure_loader_modules(
    ops_node, ops_lb, ops_patch, ops_app, drain_dir, packages, service, http_query, make_config_get, ops_utils
):
    config = make_config_get(
        {
            "ops": {
                "lb": {"drain_dir": str(drain_dir)},
                "patch": {"sets": {"2024-06": {"openssl": "3.0.13-1"}}},
            }
        }
    )
    opts = {"test": False}  # one dict, as the loader shares one opts between modules
    return {
        ops_lb: {
            "__salt__": {
                "config.get": config,
                "file.file_exists": salt_file.file_exists,
                "file.read": salt_file.read,
                "file.write": salt_file.write,
                "file.mkdir": salt_file.mkdir,
                "file.remove": salt_file.remove,
            },
            "__opts__": opts,
            "__utils__": ops_utils,
        },
        ops_patch: {
            "__salt__": {"config.get": config, **packages.salt_functions()},
            "__opts__": opts,
            "__utils__": ops_utils,
        },
        ops_app: {
            "__salt__": {"config.get": config, "http.query": http_query, **service},
            "__opts__": opts,
            "__utils__": ops_utils,
            "__context__": {},
        },
        ops_node: {
            "__salt__": {
                "ops_lb.pull_out": ops_lb.pull_out,
                "ops_lb.pull_in": ops_lb.pull_in,
                "ops_patch.install": ops_patch.install,
                "ops_app.restart": ops_app.restart,
                "ops_app.ignite": ops_app.ignite,
            },
            "__opts__": opts,
        },
        salt_file: {"__opts__": {"test": False}, "__salt__": {}, "__grains__": {"kernel": "Linux"}},
    }


@pytest.fixture(autouse=True)
def no_sleep(ops_app, monkeypatch):
    monkeypatch.setattr(ops_app, "_sleep", MagicMock())


def _workflow(ops_node):
    """The patch workflow; returns each step's state return (None: not run)."""
    steps = {"pull_out": ops_node.pulled_out("pull out", pool="web", reason="patch 2024-06")}
    steps["patch"] = ops_node.patched("monthly patch", patchset="2024-06")
    # onchanges: restart only when the patch changed something.
    steps["restart"] = ops_node.service_restarted("nginx") if steps["patch"]["changes"] else None
    steps["ignite"] = ops_node.ignited("warm up", url=URL, retries=5, interval=1)
    steps["pull_in"] = ops_node.pulled_in("pull in", pool="web")
    return steps


def test_patch_run(ops_node, drain_dir, packages, service, http_query):
    steps = _workflow(ops_node)
    assert {name: ret and ret["result"] for name, ret in steps.items()} == dict.fromkeys(
        steps, True
    )
    assert steps["pull_out"]["changes"]["pool"] == {"old": "in", "new": "out"}
    assert steps["patch"]["changes"] == {"openssl": {"old": "3.0.11-1", "new": "3.0.13-1"}}
    assert steps["restart"]["changes"] == {"restarted": "nginx"}
    assert steps["ignite"]["comment"] == f"{URL} answered 200 after 2 attempt(s)"
    assert steps["pull_in"]["changes"]["pool"] == {"old": "out", "new": "in"}
    assert packages.installed["openssl"] == "3.0.13-1"
    service["service.restart"].assert_called_once_with("nginx")
    assert not (drain_dir / "web.drain").exists()


def test_second_run_does_not_restart(ops_node, service):
    _workflow(ops_node)
    steps = _workflow(ops_node)
    assert steps["patch"]["changes"] == {}
    assert steps["restart"] is None
    service["service.restart"].assert_called_once_with("nginx")


def test_dry_run_changes_nothing(ops_node, drain_dir, packages, service, http_query):
    ops_node.__opts__["test"] = True
    steps = _workflow(ops_node)
    assert steps["pull_out"]["result"] is None
    assert steps["patch"] == {
        "name": "monthly patch",
        "result": None,
        "changes": {"openssl": {"old": "3.0.11-1", "new": "3.0.13-1"}},
        "comment": "Patch set 2024-06 would install: "
        "openssl (installed 3.0.11-1, required 3.0.13-1)",
    }
    assert steps["restart"]["result"] is None
    assert steps["ignite"]["result"] is None
    # Each step sees the node as it is now: the dry pull-out did not happen.
    assert steps["pull_in"]["result"] is True
    assert steps["pull_in"]["changes"] == {}
    assert not drain_dir.exists()
    assert packages.installed["openssl"] == "3.0.11-1"
    packages.install.assert_not_called()
    service["service.restart"].assert_not_called()
    http_query.assert_not_called()


def test_failed_patch_leaves_node_out(ops_node, drain_dir, packages):
    packages.install.side_effect = None
    packages.install.return_value = {}
    steps = {"pull_out": ops_node.pulled_out("pull out", pool="web")}
    steps["patch"] = ops_node.patched("monthly patch", patchset="2024-06")
    assert steps["patch"]["result"] is False
    # require: nothing after a failed patch runs, so the node stays drained.
    assert (drain_dir / "web.drain").read_text() == "saltpipe\n"
