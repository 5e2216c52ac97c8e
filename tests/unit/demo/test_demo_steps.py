"""The demo's step list and its local pieces, without daemons (the flow itself: tests/integration/test_demo.py)."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from pipeline.demo import default_workdir, steps
from pipeline.demo.flow import teardown
from pipeline.demo.health import HealthServer
from pipeline.demo.model import FlowState


def test_steps_in_the_order_of_the_flow() -> None:
    names = [name for name, _ in steps()]
    assert names[:3] == ["repository", "config", "mr checks"]
    order = ["topology", "release", "sync test", "rollout test", "approval", "sync production", "rollout production",
             "second change", "second change: test", "second change: production", "reports"]
    assert names[3:] == order


def test_default_workdir_is_short_enough_for_salt_sockets() -> None:
    workdir = default_workdir()
    try:
        # The topology lives in <workdir>/topo; its deepest socket path must stay under 107 bytes.
        assert len(str(workdir / "topo")) < 40
    finally:
        workdir.rmdir()


def test_health_server_answers_and_counts() -> None:
    server = HealthServer()
    try:
        with urllib.request.urlopen(server.url("prod-web-1"), timeout=5) as resp:  # noqa: S310 - loopback
            assert resp.status == 200
        assert server.hits == {"prod-web-1": 1}
    finally:
        server.close()


def test_teardown_without_a_topology_stops_the_health_server() -> None:
    flow = FlowState(health=HealthServer())
    assert teardown(flow, keep=False) == []
    assert flow.health is None


def test_demo_doc_lists_every_step() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "demo.md").read_text(encoding="utf-8")
    for name, _ in steps():
        if name not in ("repository", "config"):
            assert f"| {name} |" in doc, name
