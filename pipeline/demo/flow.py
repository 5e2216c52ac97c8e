"""The demo's delivery steps, after the MR checks: topology -> release -> sync -> rollout test -> approval ->
production, then a second change that breaks on the production canary and is halted and rolled back.

Every stage runs as the ``saltpipe`` command an operator would type (``python -m pipeline --repo <throwaway repo>
--config <topology>/pipeline.yaml ...``), in a subprocess: the derived config says how to reach the local MoM and
each syndic master, so no command needs a Salt flag. Each step judges what happened from the commands' JSON
(release, sync, status, the rollout reports) and from the minions' sandboxes, never from exit codes alone.

Steps are :data:`pipeline.demo.model.Step` functions, listed in order in :data:`FLOW_STEPS`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.demo.health import HealthServer
from pipeline.demo.invoke import OPERATOR, Ran, failed, flow_of, root_of, saltpipe, topology_of
from pipeline.demo.model import DemoContext, DemoState, FlowState, Step

#: Who approves the releases for production in the demo (``saltpipe rollout approve production``, with their own
#: GitLab token), and who runs the rollouts. The demo's GitLab is a loopback one (pipeline/gitlab/loopback.py)
#: where both are Maintainers and production is a protected environment.
REVIEWER = "demo-reviewer"

#: The second change: time sources per datacenter, one file per datacenter - and the canary's is forgotten.
CHRONY_SLS = """\
{#- Time sources per datacenter: each datacenter has its own NTP servers (files/chrony-<datacenter>.sources). -#}
{%- from "base/map.jinja" import base with context %}

base-chrony-sources:
  file.managed:
    - name: {{ base.root }}/etc/chrony/sources.d/saltpipe.sources
    - source: salt://base/files/chrony-{{ grains['datacenter'] }}.sources
    - makedirs: True
    - mode: "0644"
"""
CHRONY_FILE = "etc/chrony/sources.d/saltpipe.sources"

#: Waiting for returns: the local minions answer in seconds; a lost one is looked up quickly.
ROLLOUT_TUNING = ("--job-timeout", "120", "--lookup-retries", "2", "--lookup-interval", "2", "--poll-interval", "0.5")

# ----------------------------------------------------------------------------------------------------------------
# Helpers


def _status_lines(ctx: DemoContext, state: DemoState, environments: Sequence[str]) -> tuple[dict[str, str | None], list[str]]:
    """``saltpipe status ENV --format json`` for each environment: syndic -> release its base serves, and lines."""
    served: dict[str, str | None] = {}
    lines: list[str] = []
    for env in environments:
        ran = saltpipe(ctx, state, "status", env, "--format", "json")
        data = ran.json()
        for syndic in data["syndics"]:
            served[syndic["syndic"]] = syndic.get("served")
            exposed = ", ".join(sorted(syndic.get("exposed") or {})) or "none"
            lines.append(
                f"  {env:<10} {syndic['syndic']:<14} base serves {syndic.get('served') or 'nothing'}"
                f" (previous {syndic.get('previous') or 'none'}); canary saltenvs: {exposed}"
            )
    return served, lines


def _report_paths(ctx: DemoContext, name: str) -> tuple[Path, Path]:
    folder = ctx.workdir / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.json", folder / f"{name}.html"


def _rollout(
    ctx: DemoContext, state: DemoState, env: str, label: str, *, approve: bool
) -> tuple[Ran, dict[str, Any] | None, list[str]]:
    """``saltpipe rollout ENV --release ID`` (with the approval for production); the report and summary lines."""
    flow = flow_of(state)
    release = flow.releases[label]
    json_path, html_path = _report_paths(ctx, f"{len(flow.reports) + 1:02d}-{label}-{env}")
    words = ["rollout", env, "--release", release, "--report-json", str(json_path), "--report-html", str(html_path),
             *ROLLOUT_TUNING]
    if approve:
        given = saltpipe(ctx, state, "rollout", "approve", env, "--release", release, as_user=REVIEWER)
        if given.returncode != 0:
            return given, None, []
    ran = saltpipe(ctx, state, *words)
    if not json_path.is_file():
        return ran, None, []
    flow.reports.append((f"{label} -> {env}", json_path, html_path))
    report = json.loads(json_path.read_text(encoding="utf-8"))
    lines = [f"$ {ran.shown}", f"rollout {report['rollout_id']}: {report['outcome']}", *batch_rows(report)]
    rollback = report.get("rollback") or {}
    if rollback.get("status") == "done":
        lines.append(f"  rolled back {rollback.get('rolled_back')} to {rollback.get('release')}")
    if report.get("promoted"):
        lines.append(f"  base promoted to {release} on every {env} syndic")
    return ran, report, lines


def batch_rows(report: dict[str, Any]) -> list[str]:
    """One aligned row per batch (name, status, each minion's result), the batches the schedule skipped, and where
    the rollout halted, named as its batch is (``canary``, ``batch 1 (1)``)."""
    batches = report["batches"]
    skipped = report.get("skipped_schedule_entries") or []
    # The skipped entries share the columns: their spec is a name, "skipped" a status.
    name_w = max([len(b["name"]) for b in batches] + [len(spec) for spec, _ in skipped], default=0)
    status_w = max([len(b["status"]) for b in batches] + [len("skipped")] * bool(skipped), default=0)
    rows = []
    for batch in batches:
        results = ", ".join(f"{m['id']} {m['result']}" for m in batch["minions"])
        rows.append(f"  {batch['name']:<{name_w}}  {batch['status']:<{status_w}}  {results}")
    for spec, why in skipped:
        rows.append(f"  {spec:<{name_w}}  {'skipped':<{status_w}}  {why}")
    halted = report.get("halted")
    if halted:
        rows.append(f"  halted at {halted['batch_name']}: {halted['reason']}")
    return rows


def _exposure(sync_lines: list[str]) -> list[str]:
    """The command and the attestation line of a :func:`_sync` step's lines (for steps that sync on the way)."""
    return [line for line in sync_lines if line.startswith("$ ") or "exposed as saltenv" in line]


def _results(report: dict[str, Any]) -> dict[str, str]:
    return {m["id"]: m["result"] for b in report["batches"] for m in b["minions"]}


def _canary(report: dict[str, Any]) -> str:
    return str(report["batches"][0]["minions"][0]["id"])


# ----------------------------------------------------------------------------------------------------------------
# Steps


def topology_up(ctx: DemoContext, state: DemoState) -> tuple[bool, list[str]]:
    """Start the local topology from the throwaway repo's salt/; point production's health URL at a local server."""
    from pipeline.topology import up

    flow = flow_of(state)
    workdir = ctx.workdir / "topo"
    topo = up(workdir, repo=root_of(state), timeout=ctx.topology_timeout, progress=ctx.progress or (lambda _: None))
    flow.topology = topo
    health = HealthServer()
    flow.health = health
    from pipeline.gitlab.loopback import LoopbackGitLab

    flow.gitlab = LoopbackGitLab().start()
    flow.tokens = {user: flow.gitlab.add_user(user, access_level=40) for user in (OPERATOR, REVIEWER)}
    flow.gitlab.protect("production")
    production = topo.env_minions("production")
    for minion in production:
        topo.set_pillar(minion, {"ops": {"app": {"health_url": health.url(minion)}}})
    refreshed = topo.mom.salt(list(production), "saltutil.refresh_pillar", timeout=30)
    missing = sorted(set(production) - {m for m, r in refreshed.returns.items() if r is True})
    lines = [
        f"{len(topo.daemons)} daemons in {workdir}: MoM {topo.mom.id}, "
        + ", ".join(f"{s.id} [{', '.join(s.minion_ids)}]" for s in topo.syndics),
        "every minion answered test.ping from the MoM",
        f"derived config {topo.pipeline_config}: salt.master_config = the MoM's, each syndic's master_config set",
        f"health endpoint {health.url('<minion>')} -> pillar ops:app:health_url of {len(production)} production minions",
    ]
    if missing:
        lines.append(f"pillar refresh did not answer on {', '.join(missing)}")
    return not missing, lines


def release_first(ctx: DemoContext, state: DemoState) -> tuple[bool, list[str]]:
    """Merge the clean MR into main and build the release of main."""
    assert state.repo is not None
    repo = state.repo
    repo.git.merge("--no-ff", "mr/issue-banner", "-m", "Merge MR mr/issue-banner (approved, checks passed)")
    state.commits["main-1"] = repo.head.commit.hexsha
    return _build(ctx, state, "first", "main")


def _build(ctx: DemoContext, state: DemoState, label: str, rev: str) -> tuple[bool, list[str]]:
    ran = saltpipe(ctx, state, "release", "build", "--rev", rev, "--format", "json")
    if ran.returncode != 0:
        return failed(ran, "release build failed")
    data = ran.json()
    flow_of(state).releases[label] = data["release"]
    return True, [
        f"$ {ran.shown}",
        f"release {data['release']} from commit {data['built_from'][:12]} ({rev}): {data['files']} files, "
        f"{data['bytes']} bytes, manifest sha256 {data['manifest_sha256'][:16]}...",
        "content-addressed: the same commit always gives this id; the tree comes from Git, never the working tree",
    ]


def _sync(ctx: DemoContext, state: DemoState, env: str, label: str) -> tuple[bool, list[str]]:
    """Expose the release as its own saltenv on every syndic of ``env`` (base unchanged), then show every syndic."""
    release = flow_of(state).releases[label]
    ran = saltpipe(ctx, state, "sync", env, "--release", release, "--canary", "--format", "json")
    if ran.returncode != 0:
        return failed(ran, "sync failed")
    data = ran.json()
    lines = [f"$ {ran.shown}"]
    att = data.get("attestation") or {}
    for staged in data.get("staged", []):
        lines.append(f"  {staged['syndic']:<14} {staged['action']}: linked {staged['linked']}, copied "
                     f"{staged['copied']} file(s)")
    lines.append(
        f"{release} exposed as saltenv {data.get('saltenv')} (base unchanged); attestation ({att.get('method')}): "
        + ", ".join(f"{s['syndic']} serves {s['release']}" for s in att.get("served", []))
        + (" - agreed" if att.get("ok") else " - DISAGREE")
    )
    _, status = _status_lines(ctx, state, topology_of(state).load_pipeline_config().promotion_order())
    lines += ["what every syndic serves (saltpipe status):", *status]
    exposed_everywhere = bool(att.get("ok"))
    return exposed_everywhere, lines


def sync_test_first(ctx: DemoContext, state: DemoState) -> tuple[bool, list[str]]:
    return _sync(ctx, state, "test", "first")


def rollout_test_first(ctx: DemoContext, state: DemoState) -> tuple[bool, list[str]]:
    ran, report, lines = _rollout(ctx, state, "test", "first", approve=False)
    if report is None:
        return failed(ran, "no report")
    ok = ran.returncode == 0 and report["outcome"] == "succeeded" and bool(report.get("promoted"))
    return ok, lines


def approval(ctx: DemoContext, state: DemoState) -> tuple[bool, list[str]]:
    """Production requires a successful test rollout of the same release and one approval: without the approval
    the rollout is refused and touches nothing; the approval is then recorded with ``--approve``."""
    cfg = topology_of(state).load_pipeline_config()
    prod = cfg.environment("production")
    release = flow_of(state).releases["first"]
    refused = saltpipe(ctx, state, "rollout", "production", "--release", release, *ROLLOUT_TUNING)
    why = [line.strip() for line in refused.stderr.splitlines() if "refused" in line or line.strip().startswith("- ")]
    lines = [
        f"production requires a successful rollout to {', '.join(prod.requires)} and "
        f"{prod.approvals_required} approval(s)",
        f"$ {refused.shown}",
        f"  exit {refused.returncode}, nothing touched:",
        *(f"    {line}" for line in (why or [refused.stderr.strip()[-300:]])),
    ]
    # An approval typed by the operator is not one: GitLab says who the token belongs to.
    typed = saltpipe(ctx, state, "rollout", "production", "--release", release, "--approve", REVIEWER, *ROLLOUT_TUNING)
    lines += [f"$ {typed.shown}   (run by {OPERATOR})",
              f"  exit {typed.returncode}: " + next((ln.strip() for ln in typed.stderr.splitlines()
                                                    if "outside CI" in ln), typed.stderr.strip()[-200:])]
    # The approval: GitLab names the approver (their token) and says they may deploy to production; kept in the
    # state directory with that proof, counted by the production rollout below (started by someone else).
    lines.append(f"{REVIEWER} approves {release} for production with their own GitLab token: `saltpipe rollout "
                 f"approve production --release {release}` ({cfg.state_dir / 'approvals' / 'production'})")
    ok = (refused.returncode == 1 and "approval" in refused.stderr and "no successful rollout" not in refused.stderr
          and typed.returncode == 1 and "outside CI" in typed.stderr)
    return ok, lines


def sync_production_first(ctx: DemoContext, state: DemoState) -> tuple[bool, list[str]]:
    return _sync(ctx, state, "production", "first")


def rollout_production_first(ctx: DemoContext, state: DemoState) -> tuple[bool, list[str]]:
    flow = flow_of(state)
    ran, report, lines = _rollout(ctx, state, "production", "first", approve=True)
    if report is None:
        return failed(ran, "no report")
    flow.canary = _canary(report)
    approvals = report.get("promotion", {}).get("approvals") or []
    lines.insert(1, "approved by " + ", ".join(f"{a['name']} at {a['at']}" for a in approvals))
    health = flow.health.hits if flow.health else {}
    lines.append("health checks answered (ops_app.health -> local endpoint): "
                 + ", ".join(f"{m} x{n}" for m, n in sorted(health.items())))
    served, status = _status_lines(ctx, state, ["production"])
    lines += ["what every production syndic serves:", *status]
    release = flow.releases["first"]
    ok = (
        ran.returncode == 0
        and report["outcome"] == "succeeded"
        and bool(report.get("promoted"))
        and all(v == release for v in served.values())
        and len(health) == len(topology_of(state).env_minions("production"))
    )
    return ok, lines


def second_change(ctx: DemoContext, state: DemoState) -> tuple[bool, list[str]]:
    """Commit a change that breaks on the production canary only: its datacenter's file was forgotten."""
    assert state.repo is not None
    flow = flow_of(state)
    topo = topology_of(state)
    assert flow.canary is not None, "the production rollout ran first"
    canary_dc = topo.minion(flow.canary).datacenter
    datacenters = sorted({m.datacenter for m in topo.minions})
    root = root_of(state)
    (root / "states" / "base" / "chrony.sls").write_text(CHRONY_SLS, encoding="utf-8")
    init = root / "states" / "base" / "init.sls"
    text = init.read_text(encoding="utf-8")
    if "  - base.chrony\n" not in text:
        init.write_text(text.replace("  - base.motd\n", "  - base.motd\n  - base.chrony\n", 1), encoding="utf-8")
    written = []
    for dc in datacenters:
        if dc == canary_dc:
            continue  # the mistake: no time sources for the canary's datacenter
        path = root / "states" / "base" / "files" / f"chrony-{dc}.sources"
        path.write_text(f"# chrony sources of {dc}\nserver ntp1.{dc}.example.net iburst\n"
                        f"server ntp2.{dc}.example.net iburst\n", encoding="utf-8")
        written.append(str(path.relative_to(root)))
    repo = state.repo
    repo.index.add(["states/base/chrony.sls", "states/base/init.sls", *written])
    commit = repo.index.commit("base: time sources per datacenter (chrony)")
    state.commits["main-2"] = commit.hexsha
    ok, lines = _build(ctx, state, "second", "main")
    return ok, [
        f"commit {commit.hexsha[:12]} on main: base.chrony, a file.managed whose source is "
        "salt://base/files/chrony-<datacenter>.sources",
        f"files for {', '.join(dc for dc in datacenters if dc != canary_dc)}; none for {canary_dc}, the datacenter "
        f"of the production canary {flow.canary}: the state will fail there (source not found)",
        *lines,
    ]


def _sync_then_rollout(
    ctx: DemoContext, state: DemoState, env: str, label: str, *, approve: bool
) -> tuple[list[str], tuple[Ran, dict[str, Any]] | None]:
    """Expose the release ``label`` on every syndic of ``env``, then roll it out there: the step's lines so far and
    the rollout's run and report, or None (the lines say why) when the sync failed or the rollout left no report."""
    exposed, sync_lines = _sync(ctx, state, env, label)
    if not exposed:
        return sync_lines, None
    ran, report, rollout_lines = _rollout(ctx, state, env, label, approve=approve)
    if report is None:
        return failed(ran, "no report")[1], None
    return [*_exposure(sync_lines), *rollout_lines], (ran, report)


def second_through_test(ctx: DemoContext, state: DemoState) -> tuple[bool, list[str]]:
    """The second release passes test (its datacenter's file exists) and gets its approval."""
    lines, done = _sync_then_rollout(ctx, state, "test", "second", approve=False)
    if done is None:
        return False, lines
    ran, report = done
    topo = topology_of(state)
    applied = [m for m in topo.env_minions("test") if (topo.minion(m).sandbox / CHRONY_FILE).is_file()]
    lines.append(f"chrony sources written on: {', '.join(applied) or 'none'}")
    ok = ran.returncode == 0 and report["outcome"] == "succeeded" and len(applied) == len(topo.env_minions("test"))
    return ok, lines


def second_to_production(ctx: DemoContext, state: DemoState) -> tuple[bool, list[str]]:
    """Production, canary first: the canary fails, the rollout halts, the canary is rolled back, nobody else moves."""
    flow = flow_of(state)
    topo = topology_of(state)
    lines, done = _sync_then_rollout(ctx, state, "production", "second", approve=True)
    if done is None:
        return False, lines
    ran, report = done
    results = _results(report)
    canary = flow.canary
    others = sorted(m for m in topo.env_minions("production") if m != canary)
    touched_files = [m for m in topo.env_minions("production") if (topo.minion(m).sandbox / CHRONY_FILE).exists()]
    reasons = [r for b in report["batches"] for m in b["minions"] if m["id"] == canary
               for s in m.get("steps", {}).values() for r in s.get("reasons", [])
               if not r.startswith(("retcode ", "success "))]
    served, status = _status_lines(ctx, state, ["production"])
    first = flow.releases["first"]
    lines += [
        f"canary {canary}: " + ("; ".join(reasons[:2]) or "(no reason recorded)"),
        "other production minions: " + ", ".join(f"{m} {results.get(m, '?')}" for m in others),
        f"chrony file on production minions: {', '.join(touched_files) or 'none'}",
        "what every production syndic serves (base must still be the first release):",
        *status,
    ]
    ok = (
        ran.returncode == 1  # a halted or rolled-back rollout exits 1: expected here
        and report["outcome"] == "rolled_back"
        and results.get(canary) == "rolled_back"
        and all(results.get(m) == "untouched" for m in others)
        and not touched_files
        and all(v == first for v in served.values())
    )
    lines.append("as intended: halted on the canary, rolled back, every other minion untouched" if ok
                 else "NOT as intended (see above)")
    return ok, lines


def reports(ctx: DemoContext, state: DemoState) -> tuple[bool, list[str]]:  # pylint: disable=unused-argument
    """Where the reports are: the halted production rollout last. Each HTML page is rendered again now that all
    exist, so every report links to the others of this flow (a page written earlier could not link forward)."""
    from pipeline.rollout.report import render_html, sibling_reports

    flow = flow_of(state)
    lines = []
    for what, json_path, html_path in flow.reports:
        if json_path.is_file():
            report = json.loads(json_path.read_text(encoding="utf-8"))
            html_path.write_text(render_html(report, sibling_reports(html_path)), encoding="utf-8")
        lines.append(f"{what}: {html_path}  {json_path}")
    if flow.reports:
        what, json_path, html_path = flow.reports[-1]
        lines += [f"report of the halted rollout ({what}):", f"  HTML {html_path}", f"  JSON {json_path}"]
    return bool(flow.reports) and all(p.is_file() and h.is_file() for _, p, h in flow.reports), lines


def teardown(flow: FlowState, keep: bool) -> list[str]:
    """Stop the health server, the demo's GitLab and, unless ``keep``, the topology. Returns lines for the summary."""
    lines = []
    if flow.health is not None:
        flow.health.close()
        flow.health = None
    if flow.gitlab is not None:
        flow.gitlab.stop()
        flow.gitlab = None
    topo = flow.topology
    if topo is None:
        return lines
    if keep:
        lines.append(f"topology kept running in {topo.workdir} (saltpipe topology down --workdir {topo.workdir})")
        return lines
    final = topo.stop()
    lines.append(f"topology in {topo.workdir}: {final.summary}")
    return lines


#: The delivery steps in order, after the MR checks.
FLOW_STEPS: tuple[tuple[str, Step], ...] = (
    ("topology", topology_up),
    ("release", release_first),
    ("sync test", sync_test_first),
    ("rollout test", rollout_test_first),
    ("approval", approval),
    ("sync production", sync_production_first),
    ("rollout production", rollout_production_first),
    ("second change", second_change),
    ("second change: test", second_through_test),
    ("second change: production", second_to_production),
    ("reports", reports),
)
