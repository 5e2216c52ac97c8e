"""``saltpipe rollout ENV --release ID``, ``rollout status``, ``rollout resume`` and ``saltpipe rollback ENV``.

Thin: parse, build the Salt client and the sync adapter, call :mod:`pipeline.rollout`, show progress, write the
reports, set the exit code - 0 succeeded; 1 halted, rolled back or promotion refused; 2 usage, configuration or
infrastructure error (the rollout stays resumable).

How saltpipe reaches Salt (pipeline/salt_access.py): the ``salt:`` section of the pipeline config
(``master_config`` of the MoM for Salt's LocalClient, or ``api`` for salt-api) and each syndic's
``master_config``; the flags below override them:

* ``--master-config PATH`` / ``SALTPIPE_MASTER_CONFIG``: the MoM's master config - Salt's LocalClient on the MoM
  (run as a user allowed to publish);
* ``--salt-api URL`` / ``SALTPIPE_SALT_API_URL`` with ``SALTPIPE_SALT_API_USER`` and ``SALTPIPE_SALT_API_PASSWORD``
  (the password only from the environment, never a command-line argument or a file);
* ``--syndic-config SYNDIC=PATH``: a syndic master's config on this host (the same option as ``saltpipe sync``'s).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from pipeline.config import Gates
from pipeline.context import AppContext
from pipeline.deployments import trail_from_environ
from pipeline.rollout.audit import describe_chain
from pipeline.errors import EXIT_FINDINGS, SaltpipeError, UsageError
from pipeline.rollout import (
    Outcome,
    Plan,
    Recovery,
    RolloutContext,
    RolloutRequest,
    RolloutResult,
    RolloutStore,
    SyncServing,
    describe_plan,
    load_progress,
    resume_rollout,
    rollback_environment,
    start_rollout,
    unfinished_rollout,
)
from pipeline.notify import notifier_from_environ
from pipeline.salt_access import mom_access, parse_pairs, syndic_configs
from pipeline.salt_client.base import SaltClient

# -- options shared by every command that talks to Salt -------------------------------------------------------------


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    """``NAME=VALUE`` pairs of a repeatable option (kept for the commands that import it from here)."""
    return parse_pairs(values, option)


def _salt_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--master-config", type=click.Path(dir_okay=False, path_type=Path),
                     default=lambda: os.environ.get("SALTPIPE_MASTER_CONFIG"),
                     help="The MoM's master config: publish with Salt's LocalClient. Overrides salt.master_config / "
                          "salt.api of the config. [env SALTPIPE_MASTER_CONFIG]"),
        click.option("--salt-api", "salt_api", default=lambda: os.environ.get("SALTPIPE_SALT_API_URL"),
                     help="salt-api (rest_cherrypy) URL of the MoM; overrides the config's salt section. "
                          "[env SALTPIPE_SALT_API_URL]"),
        click.option("--salt-api-user", default=lambda: os.environ.get("SALTPIPE_SALT_API_USER"),
                     help="eauth user (default: salt.api.user). [env SALTPIPE_SALT_API_USER; password: "
                          "SALTPIPE_SALT_API_PASSWORD]"),
        click.option("--salt-api-eauth", default=lambda: os.environ.get("SALTPIPE_SALT_API_EAUTH"),
                     help="eauth backend (default: salt.api.eauth, else pam). [env SALTPIPE_SALT_API_EAUTH]"),
        click.option("--salt-api-ca", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="CA bundle for the salt-api certificate."),
        click.option("--syndic-config", "syndic_configs", multiple=True, metavar="SYNDIC=PATH",
                     help="A syndic master's config on this host: look lost returns up in its job cache and "
                          "attest through its fileserver. Overrides the syndic's master_config. Repeatable."),
        click.option("--syndic-api", "syndic_apis", multiple=True, metavar="SYNDIC=URL",
                     help="salt-api of a syndic master (same credentials), for lost-return lookups. Repeatable."),
        click.option("--job-timeout", type=float, default=300.0, show_default=True,
                     help="Seconds to wait for returns before looking them up."),
        click.option("--lookup-retries", type=int, default=5, show_default=True,
                     help="Lookup rounds (MoM cache, syndic cache, find_job) before a minion counts as missing."),
        click.option("--lookup-interval", type=float, default=10.0, show_default=True,
                     help="Seconds between lookup rounds."),
        click.option("--poll-interval", type=float, default=1.0, show_default=True,
                     help="Longest wait between polls for returns (LocalClient wakes as soon as a return "
                          "arrives on the MoM's event bus; salt-api is polled at this interval)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _report_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--report-html", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="Also write the HTML report (batches x minions) here.")(func)
    func = click.option("--report-json", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="Also write the JSON report here (it is always kept in the state directory).")(func)
    return func


def _client(app: AppContext, env_name: str, opts: dict[str, Any], gates: Gates | None = None) -> SaltClient:
    """The Salt client for a rollout of ``env_name``, allowed the health check function of ``gates`` (a resumed
    rollout's saved ones; default: the environment's in the config)."""
    env = app.config.environment(env_name)
    extra = []
    hc = (gates or env.gates).health_check
    if hc is not None and hc.function:
        extra.append(hc.function)
    from pipeline.salt_client.jobcache import with_job_cache

    client = mom_client(app, opts, extra, syndic_configs(app.config, env_name, opts["syndic_configs"]))
    # Returns read from the environment's external job cache first (docs/job-cache.md); off by default.
    return with_job_cache(client, env.job_cache)


def mom_client(app: AppContext, opts: dict[str, Any], extra: Sequence[str] = (), syndics: dict[str, Path] | None = None) -> SaltClient:
    """The client to the MoM that the config and the ``_salt_options`` flags choose (also ``fixtures import``)."""
    access = mom_access(
        app.config,
        master_config=opts["master_config"],
        api_url=opts["salt_api"],
        api_user=opts["salt_api_user"],
        api_eauth=opts["salt_api_eauth"],
        api_ca=opts["salt_api_ca"],
    )
    if access.master_config is not None:
        from pipeline.salt_client.local import LocalSaltClient

        return LocalSaltClient(
            access.master_config,
            syndic_configs=syndics or {},
            extra_functions=extra,
        )
    from pipeline.salt_client.api import SaltApiClient

    assert access.api is not None
    return SaltApiClient(
        access.api.url,
        username=access.api.user,
        password=access.password(),
        eauth=access.api.eauth,
        syndic_urls=_pairs(opts.get("syndic_apis", ()), "--syndic-api"),
        extra_functions=extra,
        verify=str(access.api.ca_bundle) if access.api.ca_bundle else True,
    )


def _context(app: AppContext, env_name: str, opts: dict[str, Any], observer: Any,
             gates: Gates | None = None) -> RolloutContext:
    env = app.config.environment(env_name)
    recovery = Recovery(
        job_timeout=opts["job_timeout"],
        poll_interval=opts["poll_interval"],
        retries=opts["lookup_retries"],
        interval=opts["lookup_interval"],
    )
    return RolloutContext(
        config=app.config,
        environment=env,
        client=_client(app, env_name, opts, gates),
        serving=SyncServing(app.state_dir(), app.config.release.keep,
                            syndic_configs(app.config, env_name, opts["syndic_configs"])),
        state_dir=app.state_dir(),
        recovery=recovery,
        observer=observer,
        notifier=notifier_from_environ(app.config.notifications, os.environ),
        authority=_authority(),
        deployments=trail_from_environ(os.environ),
    )


def _authority() -> Any:
    """GitLab's word on approvals when this run reaches GitLab (CI_SERVER_URL, CI_PROJECT_ID, token), else None."""
    from pipeline.gitlab import CiEnvironment, client_from_ci
    from pipeline.rollout.approvals import GitLabApprovals

    ci = CiEnvironment.from_environ(os.environ)
    return GitLabApprovals(client_from_ci(ci), ci) if ci.can_reach_gitlab else None


# -- progress display -------------------------------------------------------------------------------------------------


class _ProgressView:
    """Batch, minions done / failed / missing, from the journal records as they are written.

    On a terminal a live table; elsewhere (CI logs) one line per batch event.
    """

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live: Any = None
        self.rows: dict[int, dict[str, Any]] = {}
        self.plan: Plan | None = None
        self.phase = "planning"

    def start(self, plan: Plan) -> None:
        self.plan = plan
        for batch in plan.batches:
            self.rows[batch.index] = {"name": batch.name, "size": len(batch.minions), "done": 0, "failed": 0,
                                      "missing": 0, "state": "waiting"}
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)
            self.live.start()

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=f"{self.plan.environment if self.plan else ''}: {self.phase}")
        for col in ("batch", "minions", "done", "failed", "missing", "state"):
            table.add_column(col, justify="right" if col in ("minions", "done", "failed", "missing") else "left")
        for row in self.rows.values():
            table.add_row(row["name"], str(row["size"]), str(row["done"]), str(row["failed"]), str(row["missing"]),
                          row["state"])
        return table

    def _line(self, text: str) -> None:
        if self.live is None:
            self.console.print(text, markup=False, highlight=False)

    def __call__(self, record: dict[str, Any]) -> None:
        event = record["event"]
        row = self.rows.get(record.get("batch")) if isinstance(record.get("batch"), int) else None
        if event == "batch_started" and row:
            row["state"] = "running"
            self._line(f"{row['name']}: {row['size']} minion(s)")
        elif event == "minion_result" and row and record["step"] in ("apply", "sync", "health"):
            if record["status"] == "failed":
                row["failed"] += 1
            elif record["status"] == "missing":
                row["missing"] += 1
            elif record["step"] == "apply":
                row["done"] += 1
        elif event == "gate" and row:
            row["state"] = "passed" if record["passed"] else "FAILED"
            self._line(f"{row['name']}: gate {'passed' if record['passed'] else 'FAILED'} "
                       f"({record['failed']} failed, {record['missing']} missing of {record['size']})")
        elif event == "bake_started" and row:
            row["state"] = f"baking {record['seconds']:g}s"
        elif event == "halted":
            self.phase = "halted"
            self._line(f"halted: {record.get('reason')}")
        elif event == "rollback_started":
            self.phase = "rolling back"
            self._line(f"rolling back {record.get('minions')} minion(s) to {record.get('release')}")
        elif event.startswith("rollback_") and event != "rollback_started" and event != "rollback_requested":
            self._line(_rollback_line(event, record))
        elif event == "promoted":
            self.phase = "promoted"
            self._line(f"base now serves {record.get('release')}")
        elif event == "lookup" and record.get("method") == "find_job" and record.get("running"):
            self._line(f"still running {record['jid']}: {', '.join(record['running'][:5])}")
        if self.live is not None:
            self.live.update(self._table())

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def _rollback_line(event: str, record: dict[str, Any]) -> str:
    """A rollback journal event as a sentence: counts, the names of the minions not rolled back, the reason."""
    if event == "rollback_finished":
        not_back = [*record.get("failed", []), *record.get("missing", [])]
        return (f"rollback finished: {record.get('rolled_back', 0)} rolled back, {len(record.get('failed', []))} "
                f"failed, {len(record.get('missing', []))} missing" + (f" ({', '.join(not_back)})" if not_back else ""))
    fields = {k: v for k, v in record.items() if k not in ("seq", "at", "event")}
    detail = fields.pop("reason", None)
    words = "; ".join(f"{k.replace('_', ' ')} {', '.join(map(str, v)) if isinstance(v, list) else v}"
                      for k, v in fields.items())
    return f"{event.replace('_', ' ')}" + (f": {detail}" if detail else "") + (f" ({words})" if words else "")


@contextmanager
def _view() -> Iterator[_ProgressView]:
    view = _ProgressView()
    try:
        yield view
    finally:
        view.stop()


# -- results -----------------------------------------------------------------------------------------------------------


def _write_reports(result_report: Path, report_json: Path | None, report_html: Path | None) -> dict[str, Any]:
    from pipeline.report import render_html, sibling_reports, write_json

    report = json.loads(result_report.read_text(encoding="utf-8"))
    if report_json:
        write_json(report, report_json)
    if report_html:
        report_html.parent.mkdir(parents=True, exist_ok=True)
        report_html.write_text(render_html(report, sibling_reports(report_html)), encoding="utf-8")
    return report


def _finish(result: RolloutResult, report_json: Path | None, report_html: Path | None) -> None:
    report = _write_reports(result.report_path, report_json, report_html)
    totals = report["totals"]
    kind = "rollback run" if result.plan.kind == "rollback" else "rollout"
    click.echo(f"{kind} {result.plan.rollout_id} of {result.plan.release} to {result.plan.environment}: "
               f"{result.outcome.value.upper()}")
    click.echo("  " + ", ".join(f"{k} {v}" for k, v in totals.items() if v))
    if report.get("halted"):
        click.echo(f"  halted at {report['halted']['batch_name']}: {report['halted']['reason']}")
        for batch in report["batches"]:
            for minion in batch["minions"]:
                reasons = [r for s in minion.get("steps", {}).values() for r in s.get("reasons", [])]
                # "retcode 2" says little; the failed state or render error says what to fix.
                telling = [r for r in reasons if not r.startswith(("retcode ", "success "))] or reasons
                if telling and minion["result"] in ("failed", "missing", "rolled_back"):
                    click.echo(f"    {minion['id']}: {'; '.join(telling[:2])}")
    rb = report.get("rollback") or {}
    if rb.get("status") == "skipped":
        click.echo(f"  not rolled back: {rb.get('reason')}")
    elif rb.get("status") == "done":
        click.echo(f"  rolled back {rb['rolled_back']} minion(s) to {rb['release']}"
                   + (f"; NOT rolled back: {', '.join(rb['failed'] + rb['missing'])}" if rb["failed"] or rb["missing"] else ""))
    for minion, paths in sorted((rb.get("left_behind") or {}).items()):
        click.echo(f"  left behind on {minion} (added by {result.plan.release}, not managed by {rb['release']}): "
                   + ", ".join(paths[:5]) + (f" (+{len(paths) - 5} more)" if len(paths) > 5 else ""))
    _echo_reconciled(report)
    if report.get("promoted"):
        click.echo(f"  base now serves {result.plan.release} on {result.plan.environment}")
    click.echo("  chain: " + describe_chain(report.get("chain") or {}))
    for failure in (report.get("chain") or {}).get("deployment_failures") or []:
        click.echo(f"  WARNING: GitLab did not take the deployment status {failure['status']}: {failure['message']}"
                   f"\n  ({failure['hint']})")
    if result.progress.retire_failed:
        warn = result.progress.retire_failed
        click.echo(f"  warning: {warn.get('message')}\n  ({warn.get('hint')})")
    click.echo(f"  report: {result.report_path}")
    for path in (report_json, report_html):
        if path:
            click.echo(f"  report: {path}")
    if result.outcome is not Outcome.SUCCEEDED:
        # SystemExit, not click's Exit: pipeline.cli.main runs click with standalone_mode=False.
        sys.exit(EXIT_FINDINGS)


def _echo_reconciled(report: dict[str, Any]) -> None:
    """Which release the minions run, as they said after the halt (``reconciled`` in the report)."""
    rec = report.get("reconciled")
    if not rec:
        return
    click.echo(f"  running (grain {rec['grain']}, read from the minions at {rec['at']}):")
    for release, minions in rec["by_release"].items():
        click.echo(f"    {release}: {len(minions)} ({', '.join(minions[:8])}{', ...' if len(minions) > 8 else ''})")
    if rec["unanswered"]:
        click.echo(f"    did not answer: {', '.join(rec['unanswered'][:8])}")


# -- commands ------------------------------------------------------------------------------------------------------------


class _RolloutGroup(click.Group):
    """``saltpipe rollout ENV ...`` runs a rollout; ``saltpipe rollout status|resume ENV`` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_RolloutGroup)
def rollout() -> None:
    """Canary-first rollout of a release: `saltpipe rollout ENV --release ID` (the same as `rollout run`).

    Resolves the environment's target to its minions, prints and saves the plan (canary, then the batches),
    and runs each batch: saltutil.sync_all and state.apply of the release's saltenv on exactly the batch's
    minions, judged per minion from the returns. A failed gate halts and rolls the failed and earlier batches
    back. After the last batch the release becomes base on the environment's syndics.
    """


@rollout.command("run")
@click.argument("environment")
@click.option("--release", "release_id", required=True, help="The release id to roll out (saltpipe release list).")
@click.option("--approve", "approvers", multiple=True, metavar="NAME",
              help="In CI: the user who played the environment's gate job (approve:ENV), checked through GitLab "
                   "and recorded. Outside CI approvals are given with `rollout approve`. Repeatable.")
@click.option("--no-rollback", is_flag=True, help="On a failed gate, halt without rolling anything back.")
@click.option("--override-freeze", "override_freeze", default=None, metavar="REASON",
              help="Roll out inside a freeze window of ENVIRONMENT; REASON and who gave it are journaled.")
@_report_options
@_salt_options
@click.pass_obj
def run(app: AppContext, environment: str, release_id: str, approvers: tuple[str, ...], no_rollback: bool,
        override_freeze: str | None, report_json: Path | None, report_html: Path | None, **opts: Any) -> None:
    """Roll RELEASE out to ENVIRONMENT, canary first, in gated batches.

    Exit 0 when every batch passed and base serves the release; 1 when a gate failed (halted or rolled back),
    the promotion rules refused it or a freeze window is active (named; see --override-freeze); 2 on a usage,
    config or infrastructure error (then `rollout resume`).
    """
    from pipeline.release import ReleaseStore

    app.config.environment(environment)
    # The chain's first links: the commit and the merge request `release build --review` recorded for it.
    commit, merge_request = ReleaseStore.for_state_dir(app.state_dir()).get(release_id).origin()
    with _view() as view:
        ctx = _context(app, environment, opts, view)

        def on_plan(plan: Plan) -> None:
            for line in describe_plan(plan):
                click.echo(line)
            view.start(plan)

        try:
            result = start_rollout(RolloutRequest(
                ctx, release_id, commit=commit, approve=approvers, no_rollback=no_rollback, on_plan=on_plan,
                override_freeze=override_freeze, merge_request=merge_request))
        finally:
            ctx.client.close()
    _finish(result, report_json, report_html)


@rollout.command("approve")
@click.argument("environment")
@click.option("--release", "release_id", required=True, help="The release id to approve (saltpipe release list).")
@click.pass_obj
def approve(app: AppContext, environment: str, release_id: str) -> None:
    """Approve RELEASE for ENVIRONMENT as the owner of SALTPIPE_GITLAB_TOKEN (outside CI).

    GitLab says who you are (the token's user) and whether you may approve (approvers in salt/pipeline.yaml);
    the approval is recorded and counts for a rollout someone else starts. Exit 0 recorded; 1 refused; 2 when
    GitLab cannot be asked.
    """
    from pipeline.errors import GitLabError
    from pipeline.release import ReleaseStore
    from pipeline.rollout import ApprovalStore
    from pipeline.rollout.approvals import GitLabApprovals

    env = app.config.environment(environment)
    ReleaseStore.for_state_dir(app.state_dir()).get(release_id)  # an unknown release is a usage error
    authority = _authority()
    if authority is None:
        raise GitLabError("an approval is checked against GitLab, and this run cannot reach it",
                          hint="export CI_SERVER_URL, CI_PROJECT_ID and SALTPIPE_GITLAB_TOKEN (your own token)")
    assert isinstance(authority, GitLabApprovals)
    if authority.in_ci:
        raise UsageError("in CI an approval is the environment's played gate job, not `rollout approve`",
                         hint=f"play {env.approvers.gate_job.format(environment=environment)} in the pipeline")
    verified = authority.approver(env, None)
    recorded = ApprovalStore(app.state_dir()).record(environment, release_id, verified)
    click.echo(f"{recorded.name} approved {release_id} for {environment} at {recorded.at} "
               f"({recorded.proof}; {recorded.allowed_by})")


@rollout.command("resume")
@click.argument("environment")
@_report_options
@_salt_options
@click.pass_obj
def resume(app: AppContext, environment: str, report_json: Path | None, report_html: Path | None, **opts: Any) -> None:
    """Continue ENVIRONMENT's unfinished rollout (after a crash or an infrastructure error).

    Finished batches are not run again; a step whose job was published is collected by its jid.
    """
    app.config.environment(environment)
    # Nothing to resume is said from the state directory alone, before a Salt client asks for credentials.
    store = RolloutStore(app.state_dir())
    rollout_id = unfinished_rollout(store, environment)
    with _view() as view:
        # The client may publish the health check the plan was saved with, not the one the config says now.
        ctx = _context(app, environment, opts, view, _saved_gates(store, environment, rollout_id))

        def on_resume(plan: Plan) -> None:  # called once the lock is held
            click.echo(f"resuming {plan.rollout_id} ({plan.release} to {environment})")
            view.start(plan)

        try:
            result = resume_rollout(ctx, on_resume=on_resume)
        finally:
            ctx.client.close()
    _finish(result, report_json, report_html)


def _saved_gates(store: RolloutStore, environment: str, rollout_id: str) -> Gates | None:
    """The gates of the plan to resume, read before the lock to build the client; ``None`` when it cannot be read
    here (resume_rollout reads it again under the lock and says what is wrong)."""
    try:
        return store.load_plan(environment, rollout_id).gates
    except SaltpipeError:
        return None


@rollout.command("status")
@click.argument("environment")
@click.option("--id", "rollout_id", default=None, help="A rollout id (default: the unfinished or the latest one).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_report_options
@click.pass_obj
def status(app: AppContext, environment: str, rollout_id: str | None, fmt: str, report_json: Path | None,
           report_html: Path | None) -> None:
    """Show ENVIRONMENT's current or latest rollout: state, batches, results, who holds the lock.

    Reads the state directory only (no Salt call). Exit 0; 2 when there is no rollout.
    """
    from pipeline.lock import read_lock
    from pipeline.report import build_report, release_commits, render_html, sibling_reports, write_json

    app.config.environment(environment)
    store = RolloutStore(app.state_dir())
    rollout_id = rollout_id or store.latest(environment)
    if not rollout_id:
        raise UsageError(f"{environment} has no rollout yet", hint=f"start one with `saltpipe rollout {environment} --release ID`")
    progress = load_progress(store, environment, rollout_id)
    report = build_report(progress, release_commits(app.state_dir(), [progress.plan.previous_release]))
    lock = read_lock(app.state_dir(), environment)
    if report_json:
        write_json(report, report_json)
    if report_html:
        report_html.parent.mkdir(parents=True, exist_ok=True)
        report_html.write_text(render_html(report, sibling_reports(report_html)), encoding="utf-8")
    if fmt == "json":
        click.echo(json.dumps({**report, "lock": lock.to_json() if lock else None}, indent=1))
        return
    click.echo(f"{report['kind']} {report['rollout_id']}: {report['release']} to {environment}: "
               f"{report['outcome'] or report['state']}")
    click.echo(f"  started {report['started_at']} by {report['started_by']}; finished {report['finished_at'] or '-'}")
    click.echo(f"  lock: {lock.holder + ' since ' + lock.since if lock else 'free'}")
    for batch in report["batches"]:
        counts: dict[str, int] = {}
        for minion in batch["minions"]:
            counts[minion["result"]] = counts.get(minion["result"], 0) + 1
        click.echo(f"  {batch['name']:<18} {batch['status']:<8} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    click.echo("  totals: " + ", ".join(f"{k} {v}" for k, v in report["totals"].items() if v))
    _echo_reconciled(report)


@click.command("rollback")
@click.argument("environment")
@_report_options
@_salt_options
@click.pass_obj
def rollback(app: AppContext, environment: str, report_json: Path | None, report_html: Path | None, **opts: Any) -> None:
    """Roll ENVIRONMENT back to the release before its last rollout.

    An unfinished rollout is halted and its touched minions get the previous release (sync_all + state.apply of
    base). After a finished rollout, base is switched back to the previous release and applied, canary first,
    to the minions it reached. Exit 0 when every minion is back; 1 when some are not; 2 on errors.
    """
    with _view() as view:
        ctx = _context(app, environment, opts, view)

        def on_plan(plan: Plan) -> None:
            for line in describe_plan(plan):
                click.echo(line)
            view.start(plan)

        try:
            result = rollback_environment(ctx, on_plan=on_plan)
        finally:
            ctx.client.close()
    _finish(result, report_json, report_html)


COMMANDS = [rollout, rollback]
