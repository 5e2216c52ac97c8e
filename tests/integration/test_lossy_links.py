"""Lossy syndic links on the real topology (issue 13): the salt-syndic of ``syndic-prod-b`` paused (SIGSTOP)
longer than the job timeout, or killed and restarted, while its minions run batch 1 of a rollout - so their
returns reach the syndic master but never the MoM. The syndics' own job caches are out of reach (as for remote
syndics), so the evidence left is the external job cache or nothing.

* With the job cache (the session's real redis-server, Salt's own ``redis`` returner on the real minions): the
  minions that ran are counted from Redis, each applied the release exactly once, the gate passes on the true
  figures and the release is promoted.
* Without it: the same minions are counted missing (never succeeded), the rollout halts, nothing is promoted.

The fault is injected from the rollout's own journal (the observer): at batch 1's publish, once the victim's
minions have started the job (their proc files exist; the release's highstate sleeps 3 s at render, so the job
outlives the pause), the salt-syndic is stopped. It is always resumed / restarted again in a ``finally``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from it_helpers import served_tree_restored
from rollout_helpers import (
    ENV,
    FAST,
    content,
    journal,
    reached,
    restart_syndic,
    signal_syndic,
    syndic_daemon,
    write_config,
)
from sync_helpers import make_release

from pipeline.config import load_config
from pipeline.release import ReleaseStore
from pipeline.rollout import Outcome, RolloutContext, RolloutRequest, SyncServing, start_rollout
from pipeline.salt_client.jobcache import SOURCE, with_job_cache
from pipeline.salt_client.local import LocalSaltClient
from pipeline.topology import Topology
from pipeline.topology import daemons as procs
from pipeline.topology.redis import RedisServer

VICTIM = "syndic-prod-b"
SYNDICS = ("syndic-prod-a", "syndic-prod-b")
#: Batch 1 waits this long for returns; the pause lasts longer. Generous because Salt's minion writes to its
#: returners only after its return to the syndic master was answered (minion.py, _thread_multi_return), and a
#: syndic master whose salt-syndic is stopped answers slowly.
RECOVERY = replace(FAST, job_timeout=20.0, retries=1, interval=1.0, find_job_timeout=3.0)
#: Longer than the job timeout plus the lookup rounds: a syndic resumed earlier delivers the returns it held, and
#: they count (late returns are real returns).
PAUSE = RECOVERY.job_timeout + RECOVERY.retries * (RECOVERY.find_job_timeout + RECOVERY.interval) + 10.0


@pytest.fixture(scope="module")
def state(topology: Topology, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """This module's state dir; production as canary + one batch of the other five minions; the syndics'
    ``master_config`` left out (no syndic job-cache lookups: remote syndics)."""
    with served_tree_restored(topology, SYNDICS):
        base = tmp_path_factory.mktemp("lossy")
        config = write_config(topology, base / "state", base / "pipeline.yaml")
        data = yaml.safe_load(config.read_text())
        prod = data["environments"][ENV]
        prod["batches"] = ["100%"]
        for syndic in prod["syndics"]:
            syndic.pop("master_config", None)
        config.write_text(yaml.safe_dump(data, sort_keys=False))
        # Base serves a release of the trace state (what a halted rollout rolls back to).
        cfg = load_config(config)
        masters = {s.name: topology.syndic(s.name).master.config_file for s in cfg.environment(ENV).syndics}
        v0 = make_release(ReleaseStore.for_state_dir(base / "state"), content("lossy-v0")).id
        SyncServing(Path(cfg.state_dir), cfg.release.keep, masters).promote(cfg.environment(ENV), v0)
        yield {"dir": base / "state", "config": config, "data": data}


def config_with(state: dict[str, Any], cache: RedisServer | None) -> Path:
    data = json.loads(json.dumps(state["data"]))
    if cache is not None:
        data["environments"][ENV]["job_cache"] = {"type": "redis", "host": cache.host, "port": cache.port, "db": 0}
    path = state["config"].with_name("pipeline-cache.yaml" if cache else "pipeline-nocache.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def slow_release(state_dir: Path, label: str) -> str:
    """A release of the trace state whose render sleeps 3 s on each minion: the job outlives the fault."""
    files = content(label)
    files["it_rollout.sls"] = "{%- set _slow = salt['test.sleep'](3) %}\n" + files["it_rollout.sls"]
    return make_release(ReleaseStore.for_state_dir(state_dir), files).id


def context(topology: Topology, config: Path, observer: Any) -> RolloutContext:
    cfg = load_config(config)
    env = cfg.environment(ENV)
    masters = {s.name: topology.syndic(s.name).master.config_file for s in env.syndics}
    # No syndic_configs: the syndics' job caches are out of reach. Attestation still reads their fileservers.
    client = with_job_cache(LocalSaltClient(topology.mom.config_file), env.job_cache)
    return RolloutContext(
        config=cfg, environment=env, client=client,
        serving=SyncServing(Path(cfg.state_dir), cfg.release.keep, masters),
        state_dir=Path(cfg.state_dir), recovery=RECOVERY, observer=observer,
    )


def running_job(topology: Topology, minion: str, jid: str) -> bool:
    """Whether ``minion`` runs ``jid`` right now (Salt's proc file of the job in its cachedir)."""
    handle = topology.minion(minion)
    conf = yaml.safe_load(handle.config_file.read_text())
    # Salt resolves a relative cachedir below root_dir (factories writes `cachedir: cache`).
    cachedir = handle.root_dir / (conf.get("cachedir") or "var/cache/salt/minion")
    return (cachedir / "proc" / jid).exists()


class Fault:
    """Injects the fault when batch 1 is published, once the victim's minions run the job."""

    def __init__(self, topology: Topology, kind: str) -> None:
        self.topology = topology
        self.kind = kind
        self.victims = [m.id for m in topology.syndic(VICTIM).minions]
        self.injected_at: float | None = None
        self._timer: threading.Timer | None = None

    def __call__(self, rec: dict[str, Any]) -> None:
        if rec["event"] != "step_published" or rec["batch"] != 1 or self.injected_at is not None:
            return
        victims = [m for m in self.victims if m in rec["targets"]]
        deadline = time.monotonic() + 15
        while not all(running_job(self.topology, m, rec["jid"]) for m in victims):
            assert time.monotonic() < deadline, f"{victims} never started {rec['jid']}"
            time.sleep(0.02)
        if self.kind == "pause":
            signal_syndic(self.topology, VICTIM, signal.SIGSTOP)
            # Resumed after PAUSE (longer than the job timeout) whatever the rollout does meanwhile.
            self._timer = threading.Timer(PAUSE, signal_syndic, (self.topology, VICTIM, signal.SIGCONT))
            self._timer.start()
        else:
            signal_syndic(self.topology, VICTIM, signal.SIGKILL)
            procs_gone(self.topology)
        self.injected_at = time.monotonic()

    def heal(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        restart_syndic(self.topology, VICTIM)


def procs_gone(topology: Topology) -> None:
    daemon = syndic_daemon(topology, VICTIM)
    deadline = time.monotonic() + 20
    while procs.inspect(daemon).state == "running":
        assert time.monotonic() < deadline, f"{VICTIM}: salt-syndic survived SIGKILL"
        time.sleep(0.1)


def roll(topology: Topology, state: dict[str, Any], cache: RedisServer | None, kind: str, label: str):
    rel = slow_release(state["dir"], label)
    fault = Fault(topology, kind)
    ctx = context(topology, config_with(state, cache), fault)
    restarted: list[str] = []

    def restart_after_the_returns(rec: dict[str, Any]) -> None:
        # Killed while its minions run the job, started again once they finished: their returns reached the
        # syndic master while no salt-syndic listened, and are gone - still within batch 1's job timeout.
        fault(rec)
        if fault.injected_at is not None and not restarted:
            deadline = time.monotonic() + 30
            while any(running_job(topology, m, rec["jid"]) for m in fault.victims):
                assert time.monotonic() < deadline, "the victims' job never finished"
                time.sleep(0.05)
            restart_syndic(topology, VICTIM)
            restarted.append(rec["jid"])

    if kind == "restart":
        ctx = replace(ctx, observer=restart_after_the_returns)
    try:
        result = start_rollout(RolloutRequest(ctx, rel))
    finally:
        ctx.client.close()
        fault.heal()
    assert fault.injected_at is not None, "the fault was never injected"
    return rel, fault, result, journal(state["dir"], result.plan.rollout_id)


def results_of(records: list[dict[str, Any]], batch: int = 1) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["minion"], r["step"]): r for r in records if r["event"] == "minion_result" and r["batch"] == batch}


def applications(cache: RedisServer, minion: str, label: str) -> int:
    """How many jobs applied release ``label`` on ``minion``, counted from every return Redis holds."""
    db = redis.Redis(host=cache.host, port=cache.port, db=0)
    try:
        count = 0
        for key in db.scan_iter(match="ret:*"):
            raw = db.hget(key, minion)
            if raw and f"{label}.marker" in raw.decode():
                count += 1
        return count
    finally:
        db.close()


@pytest.mark.parametrize("kind", ["pause", "restart"])
def test_with_the_job_cache_minions_that_ran_count_from_redis_once(topology, state, job_cache, kind) -> None:
    label = f"lossy-{kind}-cache"
    rel, fault, result, records = roll(topology, state, job_cache, kind, label)
    assert result.outcome is Outcome.SUCCEEDED, [r for r in records if r["event"] in ("gate", "halted")]
    batch1 = results_of(records)
    victims = [m for m in fault.victims if (m, "apply") in batch1]
    assert victims, "the victim syndic had minions in batch 1"
    for minion in victims:
        for step in ("sync", "apply"):
            assert batch1[(minion, step)]["status"] == "ok" and batch1[(minion, step)]["source"] == SOURCE, minion
        assert reached(topology, minion, label)
        # Applied exactly once: one job of the release reached it, none was published again.
        assert applications(job_cache, minion, label) == 1, minion
    published = [r for r in records if r["event"] == "step_published" and r["batch"] == 1]
    assert len({r["jid"] for r in published}) == 1
    gate = [r for r in records if r["event"] == "gate" and r["batch"] == 1][-1]
    assert gate["passed"] and gate["missing"] == 0 and gate["failed"] == 0
    assert any(r["event"] == "promoted" for r in records)


def test_without_the_job_cache_the_same_minions_are_missing_and_nothing_is_promoted(topology, state) -> None:
    label = "lossy-pause-nocache"
    rel, fault, result, records = roll(topology, state, None, "pause", label)
    assert result.outcome in (Outcome.HALTED, Outcome.ROLLED_BACK)
    batch1 = results_of(records)
    victims = [m for m in fault.victims if (m, "apply") in batch1]
    assert victims
    for minion in victims:
        assert batch1[(minion, "apply")]["status"] == "missing", batch1[(minion, "apply")]
        assert reached(topology, minion, label), "it ran: only its return was lost"
    gate = [r for r in records if r["event"] == "gate" and r["batch"] == 1][0]
    assert not gate["passed"] and gate["missing"] == len(victims)
    assert not any(r["event"] in ("promoting", "promoted") for r in records)
    report = json.loads(result.report_path.read_text())
    assert report["promoted"] is False or not report["promoted"]
