"""Benchmark of the rollout engine (issue 6, point 10). Prints one JSON document.

Usage: ``python bench/rollout.py [--minions N] [--syndics S] [--repeat R]``, or the fleet mode
``python bench/rollout.py --fleet-minions 40 [--fleet-syndics 4] [--fleet-batch 5] [--rounds 1] [--topology DIR]``

* ``plan_100k_seconds`` - for ``--minions`` (100,000) simulated minions behind ``--syndics`` syndics: build the
  plan (schedule, canary, interleaved order) and aggregate the results: judge every minion's
  ``saltutil.sync_all`` and ``state.apply`` return (a highstate of 5 states; 1 minion in 1,000 fails one), build
  its per-step result, decide every batch's gate, count the totals. Wall time, the minimum of ``--repeat`` runs
  (the run least disturbed by other load on this machine; ``plan_100k_seconds_median`` and
  ``plan_100k_cpu_seconds``, the process CPU time, are printed beside it). Target <= 1 s. The simulated returns
  are generated before the clock starts.
* ``report_100k_seconds`` - building the JSON report from that (one entry per minion with its steps), measured
  apart: it is the formatter, run once at the end of a rollout.
* ``plan_100k_peak_mb`` - peak Python heap of the plan and aggregation (tracemalloc, a separate run, because
  tracing slows Python down), the simulated returns included. Target <= 300 MB.
  ``plan_and_report_100k_peak_mb`` includes the report; ``rss_peak_mb`` is the process's peak RSS (interpreter,
  imports, and every repeat's garbage included) for comparison.
* ``journal_100k_seconds`` - writing the 200,000 per-minion results to a journal as the executor does (one
  fsync per round of returns, here per batch), for scale; not part of a target.
* ``ratio_vs_salt_batch`` - on the local topology (``--topology DIR`` of a running one, else one started with
  :func:`pipeline.topology.up` in a temporary directory and stopped at the end; ``--no-topology`` skips it):
  the wall time of :func:`pipeline.rollout.start_rollout` of a release to ``production``'s six minions, in batches
  of 2 (``canary: 2``, ``batches: [2, "100%"]``; bake 0, no health check), against raw
  ``salt -b 2 -L <the six> state.apply saltenv=<release>`` published from the MoM, on the same minions and the
  same states (tests/integration/rollout_helpers.py: a highstate of two managed files and the
  ``saltpipe_release`` grain), in the same run. The
  rollout's time is everything ``start_rollout`` does: expose the release on both syndics and attest it through
  their fileservers, resolve the target, plan, per batch ``saltutil.sync_all`` + ``state.apply`` with each
  minion judged, the gates, then promote ``base`` (sync + attest). The raw run gets the release exposed
  beforehand, untimed. ``--rounds`` rounds (a fresh release for each run, so all make the same changes),
  rotating which runs first; the ratio of medians is reported, with ``..._batches_only`` (first batch start to
  last batch end, from the journal) and ``..._sync_all_and_apply`` (against ``salt -b 2 saltutil.sync_all,
  state.apply``: the same two jobs per batch the rollout runs) beside it.

Fleet mode (``--fleet-minions N``) prints only ``{"fleet": ...}``: the same comparison (the same code) on the
larger fleet of ``saltpipe topology up --minions N --syndics S --job-cache`` (started here with
:func:`pipeline.topology.up`, or ``--topology DIR`` of a running one), on production's minions in batches of
``--fleet-batch``, twice: ``without_job_cache`` and ``with_job_cache`` (production's ``job_cache`` in the rollout's
pipeline.yaml, pointing at the topology's redis-server - docs/job-cache.md; raw ``salt -b`` is the same command both
times). Each has, under ``mom``, per timed run (``rollout``, ``salt_b state.apply``, ``salt_b
saltutil.sync_all,state.apply``): ``mom_cpu_seconds`` (utime + stime of the MoM's salt-master process tree from
/proc, after minus before, median), ``jobs_per_minion`` (jobs the MoM published during the run / production's
minions, median; counted as the new job ids in the MoM's job cache, by function, ``saltutil.find_job`` lookups
included: ``find_job_per_minion``), and every run's figures. The CPU of the publishing client itself (the salt CLI,
or this process for the rollout) is not the MoM's and is not counted.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.config import PipelineConfig  # noqa: E402
from pipeline.rollout.report import build_report  # noqa: E402
from pipeline.rollout.journal import Journal, new_progress  # noqa: E402
from pipeline.rollout.judge import decide_gate, judge_return  # noqa: E402
from pipeline.rollout.model import Step, StepResult, StepStatus  # noqa: E402
from pipeline.rollout.planner import build_plan  # noqa: E402
from pipeline.salt_client.base import MinionReturn, Resolution  # noqa: E402

RELEASE = "rel-0123456789ab"


def environment(syndics: int) -> Any:
    cfg = PipelineConfig.model_validate(
        {
            "environments": {
                "production": {
                    "syndics": [
                        {"name": f"syndic-{i:02d}", "file_roots": {"type": "local", "path": f"/srv/s{i}"}}
                        for i in range(syndics)
                    ],
                    "target": "G@saltpipe_env:production",
                    "canary": "1%",
                    "batches": ["5%", "25%", "100%"],
                    "gates": {"max_failure_ratio": 0.01, "max_missing_ratio": 0.01},
                }
            }
        }
    )
    return cfg.environment("production")


def simulated(minions: int, syndics: int) -> tuple[Resolution, dict[str, MinionReturn], dict[str, MinionReturn]]:
    """A fleet and, per minion, a sync_all and a highstate return (1 in 1,000 with a failed state)."""
    fleet = {f"web{i:06d}.dc{i % syndics:02d}.example.net": f"syndic-{i % syndics:02d}" for i in range(minions)}
    sync_ret = {"modules": ["modules.ops_app"], "states": [], "grains": []}
    ok_states = {
        f"file_|-cfg{k}_|-/etc/app/{k}.conf_|-managed": {
            "result": True, "comment": "File is in the correct state", "changes": {}, "duration": 2.5, "__run_num__": k,
        }
        for k in range(5)
    }
    bad_states = dict(ok_states)
    bad_states["service_|-app_|-app_|-running"] = {"result": False, "comment": "Service app failed", "changes": {},
                                                   "duration": 9.0, "__run_num__": 5}
    syncs = {m: MinionReturn(m, "20250101000000000001", sync_ret, 0, True) for m in fleet}
    applies = {
        m: MinionReturn(m, "20250101000000000002", bad_states if i % 1000 == 999 else ok_states, 2 if i % 1000 == 999 else 0)
        for i, m in enumerate(fleet)
    }
    return Resolution(minions=fleet), syncs, applies


def plan_and_aggregate(env: Any, resolution: Resolution, syncs: dict[str, MinionReturn],
                       applies: dict[str, MinionReturn]) -> tuple[Any, dict[str, Any]]:
    """What the engine computes for a rollout of this fleet, minus Salt and the journal: the plan, a verdict and a
    result per minion and step, each batch's gate, the totals."""
    plan = build_plan(env, resolution, release=RELEASE, saltenv=RELEASE, previous_release="rel-ba9876543210",
                      commit="0" * 40, rollout_id="bench")
    progress = new_progress(plan)
    gates = []
    totals = {"succeeded": 0, "failed": 0}
    ok_status, failed_status = StepStatus.OK, StepStatus.FAILED
    for planned, bp in zip(plan.batches, progress.batches):
        bp.started = True
        failed_minions: set[str] = set()
        for step, fun, rets in ((Step.SYNC, "saltutil.sync_all", syncs), (Step.APPLY, "state.apply", applies)):
            sp = bp.step(step)
            sp.jid, sp.targets = rets[planned.minions[0]].jid, planned.minions
            results = sp.results
            for minion in planned.minions:
                ret = rets[minion]
                verdict = judge_return(fun, ret)
                if not verdict.ok:
                    failed_minions.add(minion)
                results[minion] = StepResult(minion, step, ok_status if verdict.ok else failed_status, ret.jid,
                                             ret.retcode, verdict.reasons, ret.source, verdict.duration_ms,
                                             verdict.changes)
            sp.finished = True
        gate = decide_gate(planned.index, len(planned.minions), len(failed_minions), 0, plan.gates)
        bp.gate, bp.finished, bp.passed = gate.to_json(), True, gate.passed
        gates.append(gate.passed)
        totals["failed"] += len(failed_minions)
        totals["succeeded"] += len(planned.minions) - len(failed_minions)
    return progress, {"batches": [len(b.minions) for b in plan.batches], "gates": gates, "totals": totals}


def journal_writes(env: Any, resolution: Resolution, applies: dict[str, MinionReturn]) -> float:
    plan = build_plan(env, resolution, release=RELEASE, saltenv=RELEASE, previous_release=None, commit=None,
                      rollout_id="bench")
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "journal.jsonl")
        started = time.perf_counter()
        for planned in plan.batches:
            for step in (Step.SYNC, Step.APPLY):
                for minion in planned.minions:
                    ret = applies[minion]
                    journal.write("minion_result", sync=False, batch=planned.index,
                                  **StepResult(minion, step, StepStatus.OK, ret.jid, 0, duration_ms=12.5).to_json())
                journal.sync()
        elapsed = time.perf_counter() - started
        journal.close()
    return elapsed


# ----------------------------------------------------------------------------------------------------------------
# ratio_vs_salt_batch: a real rollout against raw `salt -b N state.apply`, on the local topology

BATCH = 2


def _rollout_config(  # pylint: disable=too-many-arguments
    topology: Any, state_dir: Path, dest: Path, *, minions: int, batch: int = BATCH, job_cache: bool = False
) -> Path:
    """production with equal batches of ``batch`` (so `salt -b <batch>` is the same schedule: ``minions`` must be a
    multiple), no gates beyond 0; its ``job_cache`` (the topology's redis-server) kept only with ``job_cache``."""
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    from rollout_helpers import write_config  # pylint: disable=import-outside-toplevel

    write_config(topology, state_dir, dest)
    data = yaml.safe_load(dest.read_text())
    prod = data["environments"]["production"]
    # The canary, then counts of `batch`, then the rest ("100%", the last entry the config requires) - one batch.
    prod.update({"canary": batch, "batches": [batch] * max(0, minions // batch - 2) + ["100%"]})
    if not job_cache:
        prod.pop("job_cache", None)
    elif "job_cache" not in prod:
        raise SystemExit("--fleet: the topology's pipeline.yaml has no job_cache (start it with --job-cache)")
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


def _batches_seconds(records: list[dict[str, Any]]) -> float:
    at = [datetime.fromisoformat(r["at"]) for r in records if r["event"] in ("batch_started", "batch_finished")]
    return (max(at) - min(at)).total_seconds()


# ----------------------------------------------------------------------------------------------------------------
# The MoM's cost of a run: CPU of its salt-master process tree, and the jobs it published (its job cache)


def _tree_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and every descendant (/proc via psutil), plus what each has reaped of its exited
    children (cutime + cstime), so a worker that ended within the window still counts."""
    import psutil  # pylint: disable=import-outside-toplevel

    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


class MoMMeter:
    """Per timed run (:meth:`run`): the MoM's CPU seconds (its salt-master tree, before/after) and the jobs it
    published, by function - the new job ids in its job cache (``<cachedir>/jobs/*/*/.load.p``, which the MoM
    writes for every publish, ``saltutil.find_job`` lookups included; the syndics' own publishes of the same jid
    are not the MoM's). ``None``: measure nothing (the default topology's ratio)."""

    def __init__(self, topology: Any) -> None:
        self.runs: dict[str, list[dict[str, Any]]] = {}
        self._jobs = self._pid = None
        if topology is None:
            return
        # pylint: disable=import-outside-toplevel
        from pipeline.saltlib import import_salt
        from pipeline.topology import daemons as procs

        self._jobs = Path(import_salt("salt.config").master_config(str(topology.mom.config_file))["cachedir"]) / "jobs"
        daemon = next(d for d in topology.daemons if d.node == topology.mom.id and d.kind == "master")
        proc = procs.find_process(daemon, topology.launch_pids.get(daemon.name))
        if proc is None:
            raise SystemExit(f"{daemon.name}: no salt-master running")
        self._pid = proc.pid
        self._payload = import_salt("salt.payload")

    def _job_dirs(self) -> set[Path]:
        assert self._jobs is not None
        return {p.parent for p in self._jobs.glob("*/*/.load.p")}

    def _fun(self, job: Path) -> str:
        try:
            with open(job / ".load.p", "rb") as fh:
                fun = self._payload.load(fh).get("fun", "?")
        except (OSError, ValueError, AttributeError):
            return "?"
        return ",".join(fun) if isinstance(fun, list) else str(fun)

    @contextmanager
    def run(self, label: str) -> Iterator[None]:
        if self._pid is None:
            yield
            return
        jobs, cpu = self._job_dirs(), _tree_cpu_seconds(self._pid)
        yield
        cpu = _tree_cpu_seconds(self._pid) - cpu
        funs: dict[str, int] = {}
        for job in sorted(self._job_dirs() - jobs):
            fun = self._fun(job)
            funs[fun] = funs.get(fun, 0) + 1
        self.runs.setdefault(label, []).append({"cpu_seconds": round(cpu, 2), "jobs": dict(sorted(funs.items()))})

    def summary(self, minions: int) -> dict[str, Any]:
        """Per label: the median MoM CPU seconds, jobs published per minion (median), and every run."""
        out: dict[str, Any] = {}
        for label, runs in self.runs.items():
            totals = [sum(r["jobs"].values()) for r in runs]
            find_job = [r["jobs"].get("saltutil.find_job", 0) for r in runs]
            out[label] = {
                "mom_cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in runs), 2),
                "jobs_per_minion": round(statistics.median(totals) / minions, 3),
                "find_job_per_minion": round(statistics.median(find_job) / minions, 3),
                "runs": runs,
            }
        self.runs = {}
        return out


def _compare(  # pylint: disable=too-many-locals,too-many-statements
    topology: Any, rounds: int, *, batch: int = BATCH, job_cache: bool = False, meter: MoMMeter | None = None
) -> dict[str, Any]:
    """The ratio of medians, rollout vs `salt -b <batch>`, on production's minions. ``job_cache``: the rollout
    reads returns through the environment's job cache (docs/job-cache.md); ``meter``: each timed run's MoM CPU and
    jobs published, under ``mom`` in the result."""
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    # pylint: disable=import-outside-toplevel
    from rollout_helpers import applied, context, journal, release

    from pipeline.rollout import Outcome, RolloutRequest, start_rollout
    from pipeline.salt_client.jobcache import with_job_cache

    minions = list(topology.env_minions("production"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-rollout-"))
    state_dir = tmp / "state"
    config = _rollout_config(topology, state_dir, tmp / "pipeline.yaml", minions=len(minions), batch=batch,
                             job_cache=job_cache)
    metered = meter or MoMMeter(None)

    def ctx() -> Any:
        c = context(topology, config)
        # The client saltpipe's CLI builds (salt_access.make_client): through the job cache when the env has one.
        return replace(c, client=with_job_cache(c.client, c.environment.job_cache))

    # Untimed setup: a base release applied everywhere (the rollout's rollback target).
    c = ctx()
    try:
        c.serving.promote(c.environment, release(state_dir, "bench-base").id)
    finally:
        c.client.close()
    base = topology.mom.salt(minions, "state.apply", timeout=120)
    assert set(base.returns) == set(minions), base

    rollout_s: list[float] = []
    batches_s: list[float] = []
    salt_s: dict[str, list[float]] = {"state.apply": [], "saltutil.sync_all,state.apply": []}

    def raw(i: int, fun: str) -> None:
        label = f"bench-salt-{i}-{len(fun)}"
        rel = release(state_dir, label).id
        c = ctx()
        try:
            c.serving.expose(c.environment, rel)  # untimed: raw salt needs the release served too
        finally:
            c.client.close()
        # One saltenv=<rel> argument per function (Salt's multi-function call takes comma-separated groups).
        args = ",".join(f"saltenv={rel}" for _ in fun.split(","))
        with metered.run(f"salt_b {fun}"):
            started = time.perf_counter()
            res = topology.mom.salt(minions, fun, args, timeout=120, cli_args=("-b", str(batch)))
            salt_s[fun].append(time.perf_counter() - started)
        # Judged from the returns: every minion applied every state.
        states = {m: (ret.get("state.apply") if "," in fun else ret) for m, ret in res.returns.items()
                  if isinstance(ret, dict)}
        ok = {m for m, st in states.items()
              if isinstance(st, dict) and st and all(isinstance(v, dict) and v.get("result") for v in st.values())}
        assert ok == set(minions), f"salt -b {fun}: not every minion applied the states: {res}"
        assert applied(topology, minions) == dict.fromkeys(minions, label)

    def rollout(i: int) -> None:
        rel = release(state_dir, f"bench-rollout-{i}").id
        c = ctx()
        try:
            with metered.run("rollout"):
                started = time.perf_counter()
                result = start_rollout(RolloutRequest(c, rel))
                rollout_s.append(time.perf_counter() - started)
        finally:
            c.client.close()
        assert result.outcome is Outcome.SUCCEEDED, result.outcome
        assert [len(b.minions) for b in result.plan.batches] == [batch] * (len(minions) // batch)
        batches_s.append(_batches_seconds(journal(state_dir, result.plan.rollout_id)))
        assert applied(topology, minions) == dict.fromkeys(minions, f"bench-rollout-{i}")

    for i in range(rounds):
        # Rotate the order so that no contender always runs first (warm caches, neighbours' load).
        runs = [partial(raw, i, "state.apply"), partial(raw, i, "saltutil.sync_all,state.apply"), partial(rollout, i)]
        for k in range(len(runs)):
            runs[(k + i) % len(runs)]()
    med_rollout = statistics.median(rollout_s)
    med_apply = statistics.median(salt_s["state.apply"])
    med_both = statistics.median(salt_s["saltutil.sync_all,state.apply"])
    out = {
        "ratio_vs_salt_batch": round(med_rollout / med_apply, 3),
        "ratio_vs_salt_batch_batches_only": round(statistics.median(batches_s) / med_apply, 3),
        "ratio_vs_salt_batch_sync_all_and_apply": round(med_rollout / med_both, 3),
        "salt_batch": {
            "minions": len(minions),
            "batch_size": batch,
            "job_cache": job_cache,
            "rounds": rounds,
            "rollout_seconds": [round(t, 2) for t in rollout_s],
            "rollout_batches_seconds": [round(t, 2) for t in batches_s],
            "salt_b_state_apply_seconds": [round(t, 2) for t in salt_s["state.apply"]],
            "salt_b_sync_all_and_apply_seconds": [round(t, 2) for t in salt_s["saltutil.sync_all,state.apply"]],
            "commands": [f"salt -b {batch} -L <{len(minions)} minions> state.apply saltenv=<release>",
                         f"salt -b {batch} -L <{len(minions)} minions> saltutil.sync_all,state.apply "
                         "saltenv=<release>,saltenv=<release>"],
        },
    }
    if meter is not None:
        out["mom"] = meter.summary(len(minions))
    return out


def salt_batch_comparison(workdir: Path | None, rounds: int) -> dict[str, Any]:
    """ratio_vs_salt_batch and its details, on a running topology or one started (and stopped) here."""
    # pylint: disable=import-outside-toplevel
    from pipeline.topology import down, load, up

    # Salt, imported in this process, leaves the root logger at its lowest level (TRACE) without a handler, and
    # the first logging call anywhere then installs a stderr handler that prints every Salt record: the
    # in-process rollout would pay for formatting thousands of lines the salt CLI it is compared with never
    # writes. Configure logging as a host process should.
    logging.basicConfig(level=logging.WARNING, force=True)
    if workdir is not None:
        return _compare(load(workdir), rounds)
    work = Path(tempfile.mkdtemp(prefix="sp-bench-", dir="/tmp"))  # short: Salt's socket paths
    started = time.perf_counter()
    topology = up(work, repo=REPO, timeout=180)
    up_seconds = time.perf_counter() - started
    logging.basicConfig(level=logging.WARNING, force=True)  # again: `up` imported Salt (see above)
    try:
        out = _compare(topology, rounds)
    finally:
        down(work)
    out["salt_batch"]["topology_up_seconds"] = round(up_seconds, 1)
    return out


def fleet_comparison(  # pylint: disable=too-many-arguments
    workdir: Path | None, minions: int, syndics: int, rounds: int, batch: int
) -> dict[str, Any]:
    """The same comparison on the larger fleet (``topology up --minions N --syndics S --job-cache``), without and
    with the Redis job cache, each timed run metered on the MoM (:class:`MoMMeter`)."""
    # pylint: disable=import-outside-toplevel
    from pipeline.topology import down, load, up
    from pipeline.topology.scale import ready_timeout

    logging.basicConfig(level=logging.WARNING, force=True)  # why: salt_batch_comparison
    out: dict[str, Any] = {"jobs_counted_from": "new job ids in the MoM's job cache (<cachedir>/jobs/*/*/.load.p) "
                                                "during each timed run, by function; saltutil.find_job included"}
    work = workdir or Path(tempfile.mkdtemp(prefix="sp-fleet-", dir="/tmp"))  # short: Salt's socket paths
    if workdir is None:
        started = time.perf_counter()
        topology = up(work, repo=REPO, minions=minions, syndics=syndics, job_cache=True,
                      timeout=ready_timeout(minions))
        out["topology_up_seconds"] = round(time.perf_counter() - started, 1)
    else:
        topology = load(workdir)
    logging.basicConfig(level=logging.WARNING, force=True)  # again: `up` imported Salt
    try:
        out.update(minions=len(topology.minion_ids), syndics=len(topology.syndics),
                   production_minions=len(topology.env_minions("production")), batch_size=batch, rounds=rounds)
        meter = MoMMeter(topology)
        for cache in (False, True):
            out["with_job_cache" if cache else "without_job_cache"] = _compare(
                topology, rounds, batch=batch, job_cache=cache, meter=meter
            )
    finally:
        if workdir is None:
            down(work)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minions", type=int, default=100_000)
    parser.add_argument("--syndics", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--topology", type=Path, default=None,
                        help="work directory of a running local topology (default: start one, stop it after)")
    parser.add_argument("--rounds", type=int, default=3, help="rollout / salt -b pairs on the topology")
    parser.add_argument("--no-topology", action="store_true", help="skip ratio_vs_salt_batch")
    parser.add_argument("--fleet-minions", type=int, default=None,
                        help="fleet mode: only the comparison, on `topology up --minions N` (with --topology: a "
                             "running one started with --job-cache), without and with the job cache")
    parser.add_argument("--fleet-syndics", type=int, default=4, help="fleet mode: syndics in all")
    parser.add_argument("--fleet-batch", type=int, default=5,
                        help="fleet mode: batch size (rollout and salt -b); production's minions must be a multiple")
    args = parser.parse_args(argv)
    if args.fleet_minions is not None:
        fleet = fleet_comparison(args.topology, args.fleet_minions, args.fleet_syndics, args.rounds, args.fleet_batch)
        fleet.update(date=datetime.now().astimezone().isoformat(timespec="seconds"),
                     python=platform.python_version(), machine=platform.machine())
        print(json.dumps({"fleet": fleet}, indent=2))
        return 0

    env = environment(args.syndics)
    resolution, syncs, applies = simulated(args.minions, args.syndics)
    times, cpu_times, report_times = [], [], []
    summary: dict[str, Any] = {}
    for _ in range(args.repeat):
        started, cpu = time.perf_counter(), time.process_time()
        progress, summary = plan_and_aggregate(env, resolution, syncs, applies)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu)
        started = time.perf_counter()
        report = build_report(progress)
        report_times.append(time.perf_counter() - started)
        assert report["totals"]["succeeded"] == summary["totals"]["succeeded"]
        del progress, report

    # Peak heap of the same work, inputs included: tracemalloc sees only what is allocated while it traces, so
    # the simulated inputs are rebuilt under it too.
    del resolution, syncs, applies
    tracemalloc.start()
    resolution, syncs, applies = simulated(args.minions, args.syndics)
    progress, _ = plan_and_aggregate(env, resolution, syncs, applies)
    _, peak = tracemalloc.get_traced_memory()
    report = build_report(progress)
    _, peak_with_report = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del report, progress

    # The minimum of the repeats: the run least disturbed by whatever else shares this machine's CPUs (as timeit
    # reports); the median and the CPU time are printed beside it.
    seconds = min(times)
    peak_mb = peak / 2**20
    result = {
        "minions": args.minions,
        "syndics": args.syndics,
        "schedule": env.describe_schedule(),
        "batches": summary["batches"],
        "gates_passed": summary["gates"],
        "totals": summary["totals"],
        "plan_100k_seconds": round(seconds, 3),
        "plan_100k_seconds_median": round(statistics.median(times), 3),
        "plan_100k_seconds_runs": [round(t, 3) for t in times],
        "plan_100k_cpu_seconds": round(statistics.median(cpu_times), 3),
        "plan_100k_peak_mb": round(peak_mb, 1),
        "report_100k_seconds": round(min(report_times), 3),
        "plan_and_report_100k_peak_mb": round(peak_with_report / 2**20, 1),
        "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "journal_100k_seconds": round(journal_writes(env, resolution, applies), 3),
        "targets": {"plan_100k_seconds": 1.0, "plan_100k_peak_mb": 300, "ratio_vs_salt_batch": 1.10},
        "ok": seconds <= 1.0 and peak_mb <= 300,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    del resolution, syncs, applies
    if args.no_topology:
        result["ratio_vs_salt_batch"] = None
        result["ratio_vs_salt_batch_reason"] = "skipped (--no-topology)"
    else:
        result.update(salt_batch_comparison(args.topology, args.rounds))
        result["ok"] = result["ok"] and result["ratio_vs_salt_batch"] <= 1.10
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
