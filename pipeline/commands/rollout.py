"""``saltpipe rollout ENV --release ID``, ``rollout status``, ``rollout resume`` and ``saltpipe rollback ENV``.

Thin: parse, build the Salt client (:func:`pipeline.salt_access.make_client`) and the sync adapter, call
:mod:`pipeline.rollout`, show progress and the result (:mod:`.rollout_view`), set the exit code - 0 succeeded;
1 halted, rolled back or promotion refused; 2 usage, configuration or infrastructure error (the rollout stays
resumable).

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipeline.cli_options import file_option, text_or_json
from pipeline.commands.rollout_view import echo_reconciled, finish, progress_view, write_reports
from pipeline.commands.salt_options import salt_flags, salt_options
from pipeline.config import Gates
from pipeline.context import AppContext
from pipeline.deployments import trail_from_environ
from pipeline.errors import SaltpipeError, UsageError
from pipeline.rollout import (
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
from pipeline.salt_access import make_client, syndic_configs
from pipeline.salt_client.base import SaltClient

# -- building the context ------------------------------------------------------------------------------------------


def _report_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = file_option("--report-html", help="Also write the HTML report (batches x minions) here.")(func)
    func = file_option("--report-json", help="Also write the JSON report here (it is always kept in the state directory).")(func)
    return func


def _client(app: AppContext, env_name: str, opts: dict[str, Any], gates: Gates | None = None) -> SaltClient:
    """The Salt client for a rollout of ``env_name``, allowed the health check function of ``gates`` (a resumed
    rollout's saved ones; default: the environment's in the config)."""
    hc = (gates or app.config.environment(env_name).gates).health_check
    extra = [hc.function] if hc is not None and hc.function else []
    return make_client(app.config, salt_flags(opts), environment=env_name, extra_functions=extra)


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


def _drive(app: AppContext, environment: str, opts: dict[str, Any], reports: tuple[Path | None, Path | None],
           stage: Callable[[RolloutContext, Callable[[Plan], None]], RolloutResult], *,
           announce: Callable[[Plan], list[str]] = describe_plan, gates: Gates | None = None) -> None:
    """Run ``stage`` (an entry point of :mod:`pipeline.rollout`, given the context and the plan callback) with a
    progress view: the plan is announced when the stage hands it over, the client is closed however it ends,
    then the result is shown and sets the exit code."""
    with progress_view() as view:
        ctx = _context(app, environment, opts, view, gates)

        def on_plan(plan: Plan) -> None:
            for line in announce(plan):
                click.echo(line)
            view.start(plan)

        try:
            result = stage(ctx, on_plan)
        finally:
            ctx.client.close()
    finish(result, *reports)


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
@salt_options
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
    _drive(app, environment, opts, (report_json, report_html), lambda ctx, on_plan: start_rollout(RolloutRequest(
        ctx, release_id, commit=commit, approve=approvers, no_rollback=no_rollback, on_plan=on_plan,
        override_freeze=override_freeze, merge_request=merge_request)))


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
@salt_options
@click.pass_obj
def resume(app: AppContext, environment: str, report_json: Path | None, report_html: Path | None, **opts: Any) -> None:
    """Continue ENVIRONMENT's unfinished rollout (after a crash or an infrastructure error).

    Finished batches are not run again; a step whose job was published is collected by its jid.
    """
    app.config.environment(environment)
    # Nothing to resume is said from the state directory alone, before a Salt client asks for credentials.
    store = RolloutStore(app.state_dir())
    rollout_id = unfinished_rollout(store, environment)
    # The client may publish the health check the plan was saved with, not the one the config says now; the
    # "resuming" line comes once the lock is held, so a refusal by the lock is never preceded by it.
    _drive(app, environment, opts, (report_json, report_html),
           lambda ctx, on_resume: resume_rollout(ctx, on_resume=on_resume),
           announce=lambda plan: [f"resuming {plan.rollout_id} ({plan.release} to {environment})"],
           gates=_saved_gates(store, environment, rollout_id))


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
@text_or_json
@_report_options
@click.pass_obj
def status(app: AppContext, environment: str, rollout_id: str | None, fmt: str, report_json: Path | None,
           report_html: Path | None) -> None:
    """Show ENVIRONMENT's current or latest rollout: state, batches, results, who holds the lock.

    Reads the state directory only (no Salt call). Exit 0; 2 when there is no rollout.
    """
    from pipeline.lock import read_lock
    from pipeline.rollout.report import build_report, release_commits

    app.config.environment(environment)
    store = RolloutStore(app.state_dir())
    rollout_id = rollout_id or store.latest(environment)
    if not rollout_id:
        raise UsageError(f"{environment} has no rollout yet", hint=f"start one with `saltpipe rollout {environment} --release ID`")
    progress = load_progress(store, environment, rollout_id)
    report = build_report(progress, release_commits(app.state_dir(), [progress.plan.previous_release]))
    lock = read_lock(app.state_dir(), environment)
    write_reports(report, report_json, report_html)
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
    echo_reconciled(report)


@click.command("rollback")
@click.argument("environment")
@_report_options
@salt_options
@click.pass_obj
def rollback(app: AppContext, environment: str, report_json: Path | None, report_html: Path | None, **opts: Any) -> None:
    """Roll ENVIRONMENT back to the release before its last rollout.

    An unfinished rollout is halted and its touched minions get the previous release (sync_all + state.apply of
    base). After a finished rollout, base is switched back to the previous release and applied, canary first,
    to the minions it reached. Exit 0 when every minion is back; 1 when some are not; 2 on errors.
    """
    _drive(app, environment, opts, (report_json, report_html),
           lambda ctx, on_plan: rollback_environment(ctx, on_plan=on_plan))


COMMANDS = [rollout, rollback]
