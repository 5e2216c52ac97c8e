"""``saltpipe demo`` end to end: the whole flow on its own local topology, in a subprocess, as a user runs it.

The demo is judged by what it produced, not only by its exit code: the rollout reports (JSON) of both
scenarios, what the minions' sandboxes hold, and that its topology is down afterwards.

The fixture is named ``cli_topology`` on purpose: tests/integration/conftest.py runs the tests that start
their own topology before the session topology starts, so two topologies never run at once on this machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.topology import status as topology_status

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DemoRun:
    workdir: Path
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def report(self, name: str) -> dict[str, Any]:
        return json.loads((self.workdir / "reports" / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cli_topology() -> Iterator[DemoRun]:
    """Run ``saltpipe demo --quiet --workdir <short tmp dir>`` once for the module (it starts and stops its own
    topology below the work directory)."""
    workdir = Path(tempfile.mkdtemp(prefix="spdt-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALTPIPE_")}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "--repo", str(REPO), "demo", "--quiet", "--workdir", str(workdir)],
        capture_output=True, text=True, check=False, env=env, timeout=900,
    )
    run = DemoRun(workdir, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
    try:
        yield run
    finally:
        if (workdir / "topo" / "topology.json").exists() and not topology_status(workdir / "topo").stopped:
            subprocess.run([sys.executable, "-m", "pipeline", "topology", "down", "--workdir", str(workdir / "topo")],
                           check=False, capture_output=True, timeout=120)
        if not os.environ.get("SALTPIPE_KEEP_TOPOLOGY"):
            shutil.rmtree(workdir, ignore_errors=True)


def test_demo_behaves_as_intended(cli_topology: DemoRun) -> None:
    run = cli_topology
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    out = run.stdout
    for step in ("mr checks", "topology", "release", "sync test", "rollout test", "approval", "sync production",
                 "rollout production", "second change: production", "reports", "teardown"):
        assert f"\n{step} ok" in out, step
    # A step's own verdict line is "<step> ok (..s)" or "<step> FAILED (..s)" ("gate FAILED" inside is expected).
    assert not re.search(r"^[a-z][a-z :]* FAILED \(", out, re.M), out[-3000:]
    assert "as intended: halted on the canary, rolled back, every other minion untouched" in out
    assert "04-second-production.html" in out and "04-second-production.json" in out
    # It ends with the URL of the run's status page: the halted production rollout (docs/status-page.md).
    second = run.report("04-second-production")
    assert f"status page of this run: http://127.0.0.1:8080/rollouts/production/{second['rollout_id']}\n" in out


def test_first_release_reached_every_minion_canary_first(cli_topology: DemoRun) -> None:
    test = cli_topology.report("01-first-test")
    prod = cli_topology.report("02-first-production")
    assert test["outcome"] == "succeeded" and test["promoted"]
    assert prod["outcome"] == "succeeded" and prod["promoted"] and prod["release"] == test["release"]
    assert [len(b["minions"]) for b in prod["batches"]][0] == 1  # the canary alone first
    results = {m["id"]: m["result"] for b in prod["batches"] for m in b["minions"]}
    assert len(results) == 6 and set(results.values()) == {"succeeded"}
    assert [a["name"] for a in prod["promotion"]["approvals"]] == ["demo-reviewer"]


def test_second_release_halted_on_the_canary_and_rolled_back(cli_topology: DemoRun) -> None:
    first = cli_topology.report("02-first-production")
    second_test = cli_topology.report("03-second-test")
    second = cli_topology.report("04-second-production")
    assert second_test["outcome"] == "succeeded"
    assert second["outcome"] == "rolled_back" and not second["promoted"]
    assert second["halted"]["batch"] == 0
    assert second["previous_release"] == first["release"]
    results = {m["id"]: m["result"] for b in second["batches"] for m in b["minions"]}
    canary = second["batches"][0]["minions"][0]["id"]
    assert results.pop(canary) == "rolled_back"
    assert len(results) == 5 and set(results.values()) == {"untouched"}
    canary_steps = second["batches"][0]["minions"][0]["steps"]
    reasons = " ".join(r for step in canary_steps.values() for r in step.get("reasons", []))
    assert "chrony" in reasons and "not found" in reasons
    # The rollback is a real run of the previous release on the canary, with its own jid.
    assert second["rollback"]["status"] == "done" and second["rollback"]["release"] == first["release"]
    assert any(row["step"].startswith("rollback") for row in second["audit"])


def test_no_minion_outside_the_canary_got_the_broken_change(cli_topology: DemoRun) -> None:
    topo = cli_topology.workdir / "topo"
    changed = sorted(p.parts[-6] for p in topo.glob("*/sandbox/etc/chrony/sources.d/saltpipe.sources"))
    assert changed == ["test-app-1", "test-web-1"]  # test passed it; no production minion has it


def test_reports_and_topology_down(cli_topology: DemoRun) -> None:
    html = (cli_topology.workdir / "reports" / "04-second-production.html").read_text(encoding="utf-8")
    second = cli_topology.report("04-second-production")
    assert second["release"] in html and "rolled" in html
    final = topology_status(cli_topology.workdir / "topo")
    assert final.stopped, final.summary
