"""Faults that would leave the fleet split (issue 17), on the real topology: ``production`` (two syndics, six
minions), canary 1 then the other five.

1. **A syndic stopped mid-batch.** The salt-syndic of ``syndic-prod-b`` is stopped (SIGSTOP) just before batch
   1's forward job is published and stays stopped longer than the job timeout, through the halt and the first
   rollback job; it is resumed (SIGCONT) at the rollback's ``find_job`` round. Its three minions then get,
   late, the queued forward job: the release's canary saltenv was retired at the halt, so that job applies
   nothing - read from the minions' own files and grain - and the rollback job, published again
   (``step_republished``: the first one had not returned when the lookup rounds gave up), reaches them. The
   syndic delivers the first rollback job late as well, so the jobs run side by side, and Salt 3006 fails a
   ``state.apply`` that starts while another multi-function job runs (docs/rollout.md): what the rollout
   journals of the job published again (ok, failed on exactly that, or missing past the job timeout) and so
   the outcome (``rolled_back`` or ``halted``) depend on timing; the test checks they agree. The reconcile record and ``rollout status`` say which minion runs
   which release, as the minions answered (one minion's grain is edited after the rollback, so the answer
   differs from what the journal implies).
2. **What a rollback leaves behind** (same rollout): the release adds a file; the canary and the batch-1 minions
   that applied it are rolled back, the file stays on them, and the report lists it as ``left_behind``
   (docs/rollout.md, "What a rollback leaves behind": reported, never deleted by saltpipe).
3. **``saltpipe sync`` killed -9 at the switch**, between the first and the second syndic's switch (the switch
   journal's test hook ``SALTPIPE_TEST_PAUSE_AT_SWITCH``): the syndics are split, a rollout is refused,
   ``saltpipe status`` reports the unfinished switch while the lock is held, and the next ``saltpipe sync``
   (or ``saltpipe status`` with the lock free) finishes it - every syndic serves one release, attested through
   its fileserver and read back from the minions.

The rollout of 1 and 2 runs once (a module fixture); each test reads one aspect of it. The module restores each
syndic's ``current`` link (and removes the canary links it made), and the paused syndic is always resumed.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from it_helpers import REPO, saltpipe, served_tree_restored
from rollout_helpers import (
    ENV,
    FAST,
    applied,
    content,
    context,
    journal,
    reached,
    release,
    restart_syndic,
    signal_syndic,
    write_config,
)
from sync_helpers import make_release, served, sync_killed_at_switch

from pipeline.errors import SyncError
from pipeline.lock import EnvironmentLock
from pipeline.release import MARKER_NAME, ReleaseStore, parse_marker
from pipeline.rollout import Outcome, RolloutRequest, start_rollout
from pipeline.rollout.model import RELEASE_GRAIN
from pipeline.rollout.planner import order_minions
from pipeline.sync import SaltMasterAttestor, attest, saltenv_for, switch_journal_path
from pipeline.topology import Topology

SYNDICS = ("syndic-prod-a", "syndic-prod-b")
VICTIM = "syndic-prod-b"
#: The job timeout of the stopped syndic's minions is waited for twice while it is stopped (forward, rollback).
RECOVERY = replace(FAST, job_timeout=10.0, retries=1, interval=1.0, find_job_timeout=3.0)
#: A safety net only: the observer resumes the syndic at the rollback's find_job round, long before this.
PAUSE_LIMIT = 150.0
#: The grain value one minion is given behind saltpipe's back before the reconcile.
EDITED = "edited-by-hand"
#: The file the new release adds (no state of v0 manages it).
ADDED = "added-by-split.conf"


@pytest.fixture(scope="module")
def world(topology: Topology, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The module's state dir and config (production: canary 1, then ``100%``), v0 served as base and applied on
    every production minion (its grain set); the syndics' ``current`` links restored at the end."""
    with served_tree_restored(topology, SYNDICS):
        base = tmp_path_factory.mktemp("split")
        state_dir = base / "state"
        config = write_config(topology, state_dir, base / "pipeline.yaml")
        data = yaml.safe_load(config.read_text())
        data["environments"][ENV]["batches"] = ["100%"]
        config.write_text(yaml.safe_dump(data, sort_keys=False))
        minions = list(topology.env_minions(ENV))
        v0 = release(state_dir, "split-v0").id
        ctx = context(topology, config)
        try:
            ctx.serving.promote(ctx.environment, v0)
        finally:
            ctx.client.close()
        result = topology.mom.salt(minions, "state.apply", timeout=120)
        assert set(result.returns) == set(minions), result
        assert applied(topology, minions) == dict.fromkeys(minions, "split-v0")
        assert grains(topology, minions) == dict.fromkeys(minions, v0)
        order = order_minions({m: topology.minion(m).syndic for m in minions})
        yield {"dir": state_dir, "config": config, "v0": v0, "minions": minions, "order": order}


def grains(topology: Topology, minions: list[str]) -> dict[str, Any]:
    """Each minion's ``saltpipe_release`` grain, asked of the minion through the MoM."""
    result = topology.mom.salt(minions, "grains.get", RELEASE_GRAIN, timeout=30)
    return dict(result.returns)


def minions_see(topology: Topology, minions: list[str]) -> dict[str, str | None]:
    """The release each minion gets as ``base`` from its own syndic master (the marker, via ``cp.get_file_str``)."""
    result = topology.mom.salt(minions, "cp.get_file_str", f"salt://{MARKER_NAME}", timeout=30)
    out: dict[str, str | None] = {}
    for minion, ret in result.returns.items():
        marker = parse_marker(ret) if isinstance(ret, str) else None
        out[minion] = marker["release"] if marker else None
    return out


def base_attested(topology: Topology) -> dict[str, str | None]:
    """syndic -> the release its Salt fileserver serves as base (file list cache cleared first)."""
    attestor = SaltMasterAttestor({n: topology.syndic(n).master.config_file for n in SYNDICS})
    return {s.syndic: s.release for s in attest(attestor, SYNDICS, None, "base").served}


class SyndicPause:
    """The fault of point 1, driven by the rollout's journal: SIGSTOP of the victim's salt-syndic just before
    batch 1's forward job is published; SIGCONT at the first rollback job's ``find_job`` round for its minions
    (after the halt and the canary's retirement, before the rollback is published again)."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.victims = [m.id for m in topology.syndic(VICTIM).minions]
        self.stopped = False
        self.resumed = False
        self.edited: str | None = None
        self._timer: threading.Timer | None = None

    def __call__(self, rec: dict[str, Any]) -> None:
        if rec["event"] == "step_publishing" and rec["batch"] == 1 and rec["step"] == "sync" and not self.stopped:
            signal_syndic(self.topology, VICTIM, signal.SIGSTOP)
            self.stopped = True
            self._timer = threading.Timer(PAUSE_LIMIT, self.resume)
            self._timer.start()
        elif (self.stopped and not self.resumed and rec["event"] == "lookup" and rec.get("method") == "find_job"
              and str(rec["step"]).startswith("rollback") and set(self.victims) & set(rec["asked"])):
            self.resume()
        elif rec["event"] == "rollback_finished" and self.edited is None:
            # One minion's grain is changed behind saltpipe's back (as a late job or a hand edit would): the
            # reconcile that follows must report what the minion says, not what the journal implies.
            self.edited = sorted(set(self.topology.env_minions(ENV)) - set(self.victims))[0]
            ret = self.topology.mom.salt([self.edited], "grains.setval", RELEASE_GRAIN, EDITED, timeout=30)
            assert self.edited in ret.returns, ret

    def resume(self) -> None:
        if not self.resumed:
            self.resumed = True
            signal_syndic(self.topology, VICTIM, signal.SIGCONT)

    def heal(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        restart_syndic(self.topology, VICTIM)


def split_release(state_dir: Path, label: str) -> str:
    """A release of the trace state that also adds :data:`ADDED` (a file no state of v0 manages)."""
    files = content(label)
    files["it_rollout.sls"] += (
        "it_rollout_added:\n  file.managed:\n    - name: {{ dir }}/" + ADDED + "\n    - contents: " + label + "\n"
    )
    return make_release(ReleaseStore.for_state_dir(state_dir), files).id


@pytest.fixture(scope="module")
def paused_run(topology: Topology, world: dict[str, Any]) -> dict[str, Any]:
    """The rollout of point 1 (and 2), run once: its result, journal, the fault and the release."""
    label = "split-new"
    rel = split_release(world["dir"], label)
    fault = SyndicPause(topology)
    ctx = context(topology, world["config"], observer=fault, recovery=RECOVERY)
    try:
        result = start_rollout(RolloutRequest(ctx, rel))
    finally:
        ctx.client.close()
        fault.heal()
    assert fault.stopped and fault.resumed, "the fault was not injected as planned"
    records = journal(world["dir"], result.plan.rollout_id)
    batch1 = set(result.plan.batches[1].minions)
    victims = sorted(set(fault.victims) & batch1)
    assert victims, f"batch 1 ({sorted(batch1)}) has no minion of {VICTIM}"
    return {"release": rel, "label": label, "result": result, "records": records, "victims": victims,
            "others": sorted(batch1 - set(victims)), "canary": result.plan.batches[0].minions[0],
            "edited": fault.edited}


def events(records: list[dict[str, Any]]) -> list[str]:
    return [r["event"] for r in records]


def forward_jid(records: list[dict[str, Any]]) -> str:
    (jid,) = {r["jid"] for r in records if r["event"] == "step_published" and r["batch"] == 1
              and r["step"] in ("sync", "apply")}
    return jid


# -- 1. a syndic stopped mid-batch -------------------------------------------------------------------------------


def test_stopped_syndic_halts_and_the_canary_saltenv_is_retired_before_the_rollback(topology, paused_run) -> None:
    records, victims = paused_run["records"], paused_run["victims"]
    gate = [r for r in records if r["event"] == "gate" and r["batch"] == 1][-1]
    assert not gate["passed"] and gate["missing"] == len(victims) and gate["failed"] == 0, gate
    missing = {r["minion"] for r in records if r["event"] == "minion_result" and r["batch"] == 1
               and r["step"] == "apply" and r["status"] == "missing"}
    assert missing == set(victims)
    seq = events(records)
    assert seq.index("halted") < seq.index("canary_retired") < seq.index("rollback_started"), seq
    # The retirement precedes every rollback publish, and no forward job was ever published twice.
    first_rollback = min(i for i, r in enumerate(records) if r["event"] == "step_publishing"
                         and r["step"].startswith("rollback"))
    assert seq.index("canary_retired") < first_rollback
    forward = [r for r in records if r["event"] == "step_published" and r["batch"] == 1
               and r["step"] in ("sync", "apply")]
    assert len({r["jid"] for r in forward}) == 1, forward
    assert all(r["steps"][0].startswith("rollback") for r in records if r["event"] == "step_republished")
    assert not any(r["event"] in ("promoting", "promoted") for r in records)
    # On the syndics themselves: the release's saltenv link is gone.
    for name in SYNDICS:
        assert not (topology.syndic(name).file_roots / "envs" / saltenv_for(paused_run["release"])).exists()


def test_the_late_forward_job_reaches_the_resumed_syndic_and_applies_nothing(topology, world, paused_run) -> None:
    """The queued forward job is delivered once the syndic resumes (its minions' returns of it reach their syndic
    master's job cache), after the retirement: no minion of that syndic got any file or grain of the release."""
    jid, victims, label = forward_jid(paused_run["records"]), paused_run["victims"], paused_run["label"]
    master = topology.syndic(VICTIM).master
    deadline = time.monotonic() + 60
    while True:
        got = master.salt_run("jobs.lookup_jid", jid, timeout=30).data or {}
        if isinstance(got, dict) and all(m in got for m in victims):
            break
        assert time.monotonic() < deadline, f"the forward job {jid} never reached {victims} late: {got}"
        time.sleep(1)
    for minion in victims:
        ret = json.dumps(got[minion])
        assert "it_rollout_applied" not in ret and f"{label}.marker" not in ret, (minion, got[minion])
        assert not reached(topology, minion, label), f"{minion} applied {label} late"
        assert not (topology.minion(minion).root_dir / "sandbox" / "saltpipe-it" / ADDED).exists(), minion
    assert applied(topology, victims) == dict.fromkeys(victims, "split-v0")
    assert grains(topology, victims) == dict.fromkeys(victims, world["v0"])


def test_the_lost_rollback_is_published_again_and_reaches_the_resumed_syndic(topology, paused_run) -> None:
    records, victims = paused_run["records"], paused_run["victims"]
    (again,) = [r for r in records if r["event"] == "step_republished"]
    assert again["batch"] == 1 and again["steps"] == ["rollback_sync", "rollback_apply"], again
    assert set(again["targets"]) == set(victims), again
    first = {r["jid"] for r in records if r["event"] == "step_published" and r["batch"] == 1
             and r["step"].startswith("rollback")}
    assert again["replaces"] in first and again["jid"] not in first
    # The job published again reaches every victim: their returns of it are in their syndic master's job cache.
    master = topology.syndic(VICTIM).master
    deadline = time.monotonic() + 90
    while True:
        got = master.salt_run("jobs.lookup_jid", again["jid"], timeout=30).data or {}
        if isinstance(got, dict) and all(m in got for m in victims):
            break
        assert time.monotonic() < deadline, f"the rollback published again ({again['jid']}) never reached {victims}"
        time.sleep(1)
    # What the rollout journaled of it depends on timing: the resumed syndic also delivers, late, the jobs it
    # held (the forward job, the first rollback job), which run beside it on the same minions. So a victim's
    # rollback apply is ok, failed on Salt 3006's queue check only (saltutil.is_running raises a TypeError on a
    # running multi-function job), or missing (returned after the job timeout) - and the outcome follows.
    results = {(r["minion"], r["step"]): r for r in records if r["event"] == "minion_result" and r["batch"] == 1}
    status = {m: results[(m, "rollback_apply")]["status"] for m in victims}
    for minion in victims:
        rec = results[(minion, "rollback_apply")]
        assert rec["jid"] == again["jid"], "judged by the job published again"
        assert rec["status"] in ("ok", "failed", "missing"), rec
        if rec["status"] == "failed":
            assert "saltutil.is_running" in rec["output"], rec
    (finished,) = [r for r in records if r["event"] == "rollback_finished"]
    assert finished["failed"] == sorted(m for m, st in status.items() if st == "failed"), finished
    assert finished["missing"] == sorted(m for m, st in status.items() if st == "missing"), finished
    outcome = Outcome.ROLLED_BACK if set(status.values()) == {"ok"} else Outcome.HALTED
    assert paused_run["result"].outcome is outcome
    assert records[-1]["event"] == "rollout_finished" and records[-1]["outcome"] == outcome.value


def test_after_the_halt_the_minions_say_which_release_they_run(topology, world, paused_run) -> None:
    records = paused_run["records"]
    touched = sorted([paused_run["canary"], *paused_run["victims"], *paused_run["others"]])
    (rec,) = [r for r in records if r["event"] == "reconciled"]
    assert events(records).index("rollback_finished") < events(records).index("reconciled")
    assert rec["grain"] == RELEASE_GRAIN and rec["unanswered"] == []
    # Every minion was rolled back (the journal), yet one says something else (its grain was edited after the
    # rollback): the record is what the minions answered, and what they answer now, asked independently.
    edited = paused_run["edited"]
    on_v0 = [m for m in touched if m != edited]
    assert edited in touched and rec["releases"] == {**dict.fromkeys(on_v0, world["v0"]), edited: EDITED}
    assert rec["releases"] == grains(topology, touched)
    proc = saltpipe("--config", str(world["config"]), "rollout", "status", ENV, "--id",
                    paused_run["result"].plan.rollout_id)
    assert proc.returncode == 0, proc.stderr
    assert f"running (grain {RELEASE_GRAIN}, read from the minions at {rec['at']})" in proc.stdout, proc.stdout
    assert f"{world['v0']}: {len(on_v0)} ({', '.join(on_v0)})" in proc.stdout, proc.stdout
    assert f"{EDITED}: 1 ({edited})" in proc.stdout, proc.stdout
    report = json.loads(paused_run["result"].report_path.read_text())
    assert report["reconciled"]["by_release"] == {world["v0"]: on_v0, EDITED: [edited]}


# -- 2. what a rollback leaves behind ------------------------------------------------------------------------------


def test_rollback_leaves_the_files_the_release_added_and_reports_them(topology, paused_run) -> None:
    """The canary and the batch-1 minions of the live syndic applied the release (and its new file), then were
    rolled back: the file stays on them (applying v0 does not remove it) and the report lists it."""
    label = paused_run["label"]
    appliers = [paused_run["canary"], *paused_run["others"]]
    report = json.loads(paused_run["result"].report_path.read_text())
    left = report["rollback"]["left_behind"]
    for minion in appliers:
        sandbox = topology.minion(minion).root_dir / "sandbox" / "saltpipe-it"
        assert (sandbox / ADDED).read_text().strip() == label, minion
        assert applied(topology, [minion]) == {minion: "split-v0"}, "rolled back"
        assert sorted(left[minion]) == sorted([str(sandbox / ADDED), str(sandbox / f"{label}.marker")]), left
    # The stopped syndic's minions never applied it: nothing of theirs is listed.
    assert set(left) == set(appliers), left


# -- 3. saltpipe sync killed -9 at the switch ---------------------------------------------------------------------


def kill_sync_at_switch(config: Path, release_id: str, tmp_path: Path) -> None:
    """``saltpipe sync production --release ID`` in a subprocess, killed -9 once the first syndic's ``current``
    has switched (the switch journal's test hook makes the others wait)."""
    sync_killed_at_switch([sys.executable, "-m", "pipeline", "--repo", str(REPO), "--config", str(config), "sync",
                           ENV, "--release", release_id], tmp_path / "paused-at-switch", timeout=180)


def links(topology: Topology) -> dict[str, str | None]:
    """syndic -> the release its ``current`` link names (read from its directory)."""
    return {name: served(topology.syndic(name).file_roots) for name in SYNDICS}


def test_sync_killed_at_the_switch_is_reported_refused_then_finished_by_the_next_sync(
    topology, world, paused_run, tmp_path
) -> None:
    before = world["v0"]
    assert links(topology) == dict.fromkeys(SYNDICS, before)
    new = release(world["dir"], "split-switch-1").id
    kill_sync_at_switch(world["config"], new, tmp_path)
    journal_file = switch_journal_path(world["dir"], ENV)
    assert journal_file.exists()
    split = links(topology)
    assert sorted(split.values()) == sorted([before, new]), split  # one switched, one not: split
    by_syndic = {m: topology.minion(m).syndic for m in world["minions"]}
    seen = minions_see(topology, world["minions"])
    assert seen == {m: split[by_syndic[m]] for m in world["minions"]}, "each minion gets its own syndic's release"

    # A rollout is refused meanwhile, before anything is planned or published.
    ctx = context(topology, world["config"])
    try:
        with pytest.raises(SyncError, match="serve different releases as base"):
            start_rollout(RolloutRequest(ctx, release(world["dir"], "split-refused").id))
    finally:
        ctx.client.close()
    assert not (world["dir"] / "rollouts" / ENV / "current").exists()

    # `saltpipe status` while another process holds the environment: reports the unfinished switch and the split.
    with EnvironmentLock(world["dir"], ENV, "test holds the lock"):
        proc = saltpipe("--config", str(world["config"]), "status", ENV)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert f"an unfinished switch is journaled in {journal_file}; not recovered" in proc.stderr, proc.stderr
    assert before in proc.stdout and new in proc.stdout, proc.stdout
    assert journal_file.exists() and links(topology) == split

    # The next sync finishes it first, then syncs (and attests) as asked.
    proc = saltpipe("--config", str(world["config"]), "sync", ENV, "--release", new)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert f"an interrupted switch of {ENV} to {new}" in proc.stderr and "finished it" in proc.stderr, proc.stderr
    assert not journal_file.exists()
    assert links(topology) == dict.fromkeys(SYNDICS, new)
    assert base_attested(topology) == dict.fromkeys(SYNDICS, new)
    assert minions_see(topology, world["minions"]) == dict.fromkeys(world["minions"], new)


def test_status_finishes_an_interrupted_switch_when_the_lock_is_free(topology, world, tmp_path) -> None:
    old = links(topology)["syndic-prod-a"]
    assert set(links(topology).values()) == {old}
    new = release(world["dir"], "split-switch-2").id
    kill_sync_at_switch(world["config"], new, tmp_path)
    assert sorted(links(topology).values()) == sorted([old, new])
    proc = saltpipe("--config", str(world["config"]), "status", ENV)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert f"an interrupted switch of {ENV} to {new}" in proc.stderr and "finished it" in proc.stderr, proc.stderr
    assert not switch_journal_path(world["dir"], ENV).exists()
    assert links(topology) == dict.fromkeys(SYNDICS, new)
    assert base_attested(topology) == dict.fromkeys(SYNDICS, new)
    assert minions_see(topology, world["minions"]) == dict.fromkeys(world["minions"], new)
