"""``saltpipe release build|list``, ``saltpipe sync ENV``, ``saltpipe status ENV``.

Thin: parse, call the release or sync stage, format, set the exit code (0 ok, 2 when a syndic failed or the
attestation disagreed - every failure line names the syndic and the cause).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipeline.cli_options import file_option, text_or_json
from pipeline.context import AppContext
from pipeline.errors import EXIT_FINDINGS, SyncError, UsageError
from pipeline.freeze import check_freeze, record_override
from pipeline.layout import RepoLayout
from pipeline.lock import EnvironmentLock, read_lock
from pipeline.release import BuildContext, ReleaseStore, build_release
from pipeline.release.manifest import check_release_id
from pipeline.salt_access import syndic_configs
from pipeline.sync import (
    SwitchJournal,
    SyncContext,
    choose_attestor,
    environment_status,
    open_targets,
    previous_release,
    recover_switch,
    saltenv_for,
    switch_journal_path,
    sync_release,
    unexpose_release,
)
from pipeline.sync.attest_select import MODES as ATTEST_MODES
from pipeline.sync.report import release_json, release_lines, status_json, status_lines, store_entry_json, sync_json, sync_lines


def _store(app: AppContext) -> ReleaseStore:
    return ReleaseStore.for_state_dir(app.state_dir())


@click.group()
def release() -> None:
    """Build and list immutable releases of the file_roots tree."""


@release.command("build")
@click.option("--rev", default="HEAD", show_default=True, help="Git revision to build (never the working tree).")
@file_option("--review", "review_json", exists=True,
             help="The verdict of `saltpipe review --merged --output FILE` for this commit: record the merge "
                  "request it names as where the release came from (the audit chain's first link).")
@text_or_json
@click.pass_obj
def build(app: AppContext, rev: str, review_json: Path | None, fmt: str) -> None:
    """Build the release of a commit: states/ plus _modules/, _states/ and every other _*/ directory (or
    wherever layout: in the pipeline config puts them).

    The id is derived from the content, so the same commit always gives the same id; building it again reuses
    the stored release. Exit 2 naming the path when the commit holds something that cannot be released, or
    when --review is not an approved verdict for the commit built.
    """
    verdict = _merged_verdict(review_json) if review_json else None
    result = build_release(BuildContext(repo=app.repo, rev=rev, store=_store(app), layout=RepoLayout.of(app.config.layout)))
    merge_request = None
    if verdict is not None:
        if verdict.get("merged_sha") != result.commit:
            raise UsageError(
                f"{review_json}: the review verdict is for commit {str(verdict.get('merged_sha'))[:12]}, not "
                f"{result.commit[:12]} (what --rev {rev} names)",
                hint="run `saltpipe review --merged --output FILE` for the same commit as `release build --rev`",
            )
        merge_request = {
            "iid": verdict["merge_request"],
            "url": verdict.get("web_url"),
            "title": verdict.get("title"),
            "approvers": [a["username"] for a in verdict.get("approvers") or [] if a.get("counts")],
            "branch": verdict.get("branch"),
        }
        _store(app).record_provenance(result.release, result.commit, merge_request)
    if fmt == "json":
        click.echo(json.dumps({**release_json(result.release, result.created), "built_from": result.commit,
                               "merge_request": merge_request}, indent=2))
    else:
        for line in release_lines(result.release, result.created):
            click.echo(line)
        if merge_request:
            click.echo(f"  from merge request !{merge_request['iid']} (approved by "
                       f"{', '.join(merge_request['approvers']) or 'nobody counted'})")


def _merged_verdict(path: Path) -> dict[str, object]:
    """The JSON of an approved ``review --merged``; :class:`UsageError` for anything else."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a review verdict ({exc})",
                         hint="write it with `saltpipe review --merged --output FILE`") from None
    if not isinstance(data, dict) or not data.get("merged_sha") or not isinstance(data.get("merge_request"), int):
        raise UsageError(f"{path}: not the verdict of `saltpipe review --merged` (no merged_sha / merge_request)",
                         hint="write it with `saltpipe review --merged --output FILE`")
    if data.get("approved") is not True:
        raise UsageError(f"{path}: the review gate did not approve merge request !{data['merge_request']}",
                         hint="a release is built only from a commit that passed `saltpipe review --merged`")
    return data


@release.command("list")
@text_or_json
@click.option("--verify", is_flag=True, help="Also hash every stored file against its manifest (reads the whole store).")
@click.pass_obj
def list_releases(app: AppContext, fmt: str, verify: bool) -> None:
    """The releases in the local store, oldest first, then any damaged entry with what is wrong.

    Exit 0 when every entry is intact, 1 when one is damaged (remove it and rebuild with `release build`)."""
    entries = _store(app).entries(verify=verify)
    if fmt == "json":
        click.echo(json.dumps([store_entry_json(e) for e in entries], indent=2))
    else:
        for e in entries:
            if e.release is not None and not e.damaged:
                r = e.release
                click.echo(f"{r.id}  {r.built_at or '?':25}  {(r.commit or '?')[:12]}  {len(r.manifest.entries)} files")
            else:
                click.echo(f"{e.id}  DAMAGED: {e.problem} ({e.path})")
    damaged = [e for e in entries if e.damaged]
    if damaged:
        click.echo(
            f"{len(damaged)} damaged release(s) in {_store(app).root}: releases are immutable, so remove each one "
            "and rebuild it with `saltpipe release build --rev <commit>`",
            err=True,
        )
        raise click.exceptions.Exit(EXIT_FINDINGS)


def _refuse_if_a_rollout_uses(app: AppContext, environment: str, release_id: str) -> None:
    """An unfinished rollout of ``release_id`` (crashed, to be resumed or rolled back) still publishes to its
    canary saltenv: removing it would make the rest of that rollout fail on every minion."""
    from pipeline.rollout import RolloutStore  # pylint: disable=import-outside-toplevel

    store = RolloutStore(app.state_dir())
    rollout_id = store.current(environment)
    if rollout_id and store.load_plan(environment, rollout_id).release == release_id:
        raise UsageError(
            f"rollout {rollout_id} of {release_id} to {environment} is unfinished and uses that canary saltenv",
            hint=f"finish it first (`saltpipe rollout resume {environment}` or `saltpipe rollback {environment}`); "
            "a finished rollout removes its canary saltenv itself",
        )


def _recover(app: AppContext, environment: str, targets) -> None:  # type: ignore[no-untyped-def]
    """Finish (or undo) a switch a killed sync left half done, before anything else (docs/sync.md); the caller
    holds the environment's lock."""
    recovery = recover_switch(targets, SwitchJournal(switch_journal_path(app.state_dir(), environment)))
    if recovery is not None:
        click.echo(recovery.describe(), err=True)
        for warning in recovery.warnings:
            click.echo(f"warning: {warning}", err=True)


@click.command()
@click.argument("environment")
@click.option("--release", "release_id", default=None, help="Release id to deploy (default: build --rev).")
@click.option("--rev", default="HEAD", show_default=True, help="Build and deploy this revision when no --release.")
@click.option("--rollback", is_flag=True, help="Deploy the release every syndic served before the current one.")
@click.option("--canary", is_flag=True, help="Expose the release as its own saltenv; leave base unchanged.")
@click.option("--remove-canary", "remove_canary", default=None, metavar="ID", help="Remove the canary saltenv of ID.")
@click.option("--attest", type=click.Choice(ATTEST_MODES), default="auto", show_default=True,
              help="How to check what each syndic serves after the switch: salt (each syndic master's own Salt "
                   "fileserver: in-process with a local master config, over SSH on an SSH syndic's host), "
                   "file_roots (the marker read through the target), auto = salt, falling back to the marker "
                   "only where Salt cannot be asked, reported as weaker.")
@click.option("--syndic-config", "syndic_config_args", multiple=True, metavar="SYNDIC=PATH",
              help="A syndic master's config on this host (overrides the syndic's master_config in the pipeline "
                   "config; the same option as rollout's). Repeatable.")
@click.option("--override-freeze", "override_freeze", default=None, metavar="REASON",
              help="Sync base inside a freeze window of ENVIRONMENT; REASON and who gave it are recorded.")
@text_or_json
@click.pass_obj
def sync(app: AppContext, environment: str, release_id: str | None, rev: str, rollback: bool, canary: bool,
         remove_canary: str | None, attest: str, syndic_config_args: tuple[str, ...], override_freeze: str | None,
         fmt: str) -> None:
    """Deploy a release to every syndic of ENVIRONMENT: stage and verify everywhere, then switch everywhere.

    If any syndic cannot be staged, none is switched: each keeps serving its previous release, the command
    exits 2 naming the syndic and the cause, and running it again completes the sync. One sync or rollout per
    environment at a time. Inside a freeze window a sync of base (not --canary / --remove-canary, which change
    nothing any minion applies by default) exits 1 naming the window, unless --override-freeze gives a reason.
    """
    cfg = app.config
    env = cfg.environment(environment)
    if sum(bool(x) for x in (release_id, rollback, remove_canary)) > 1:
        raise UsageError("give at most one of --release, --rollback and --remove-canary")
    store = _store(app)
    master_configs = syndic_configs(cfg, environment, syndic_config_args)
    with open_targets(env) as targets:
        with EnvironmentLock(app.state_dir(), environment, "sync"):
            _recover(app, environment, targets)
            if remove_canary:
                _refuse_if_a_rollout_uses(app, environment, check_release_id(remove_canary))
                errors = unexpose_release(targets, saltenv_for(check_release_id(remove_canary)))
                if errors:
                    raise SyncError("; ".join(str(e) for e in errors), hint="fix the cause and run this again")
                click.echo(f"removed canary saltenv {saltenv_for(remove_canary)} from {len(targets)} syndics")
                return
            freeze = None if canary else check_freeze(environment, env.freeze, action="sync",
                                                          override=override_freeze)
            if rollback:
                rel = store.get(previous_release(targets))
            elif release_id:
                rel = store.get(check_release_id(release_id))
            else:
                rel = build_release(BuildContext(repo=app.repo, rev=rev, store=store, layout=RepoLayout.of(app.config.layout))).release
            ctx = SyncContext(
                environment=environment,
                release=rel,
                targets=targets,
                store=store,
                keep=cfg.release.keep,
                saltenv=saltenv_for(rel.id) if canary else "base",
                attestor=choose_attestor(targets, master_configs, attest, store),
                switch_journal=switch_journal_path(app.state_dir(), environment),
            )
            if freeze is not None and freeze.overridden:
                record_override(app.state_dir(), freeze, action="sync", release=rel.id)
                click.echo(f"freeze window {freeze.to_json()['window']} overridden: {freeze.override}", err=True)
            result = sync_release(ctx)
    if fmt == "json":
        click.echo(json.dumps(sync_json(result), indent=2))
    else:
        for line in sync_lines(result):
            click.echo(line)
    if not result.ok:
        switched = "every syndic still serves its previous release" if not result.switched else (
            "check `saltpipe status " + environment + "`"
        )
        # One syndic per line, each followed by its own hint (a failure's text is "message\n  hint: ...").
        problems = "".join(f"\n  {line}" for failure in result.failures() for line in failure.splitlines())
        raise SyncError(
            f"sync of {result.release} to {environment} failed:{problems}",
            hint=f"fix the cause and run `saltpipe sync {environment} --release {result.release}` again; {switched}",
        )


@click.command()
@click.argument("environment")
@text_or_json
@click.pass_obj
def status(app: AppContext, environment: str, fmt: str) -> None:
    """What every syndic of ENVIRONMENT serves, the previous release, since when; and who holds the lock.

    Exit 0 when every syndic answered and they serve the same release, 1 when they differ, 2 when one could not
    be read.
    """
    from pipeline.errors import LockError  # pylint: disable=import-outside-toplevel

    env = app.config.environment(environment)
    journal = SwitchJournal(switch_journal_path(app.state_dir(), environment))
    with open_targets(env) as targets:
        if journal.path.exists():
            # A sync killed mid-switch: finish it now if nobody else holds the environment (a running sync or
            # rollout may be the one switching); otherwise the status below shows the split and says so.
            try:
                with EnvironmentLock(app.state_dir(), environment, "status (switch recovery)"):
                    _recover(app, environment, targets)
            except LockError as exc:
                click.echo(f"an unfinished switch is journaled in {journal.path}; not recovered: {exc.message}",
                           err=True)
        statuses = environment_status(targets)
    lock = read_lock(app.state_dir(), environment)
    from pipeline.rollout.audit import describe_chain, served_chain

    served = sorted({s.served for s in statuses if not s.error and s.served})
    chains = {rid: served_chain(app.state_dir(), environment, rid) for rid in served}
    if fmt == "json":
        click.echo(json.dumps({**status_json(environment, statuses, lock), "chain": chains}, indent=2))
    else:
        for line in status_lines(environment, statuses, lock):
            click.echo(line)
        for rid, chain in chains.items():
            click.echo(f"  {rid}: " + (describe_chain(chain) + f" ({chain.get('outcome')})" if chain
                                       else "no rollout recorded (served by a plain sync)"))
    if any(s.error for s in statuses):
        raise click.exceptions.Exit(2)
    if len({s.served for s in statuses}) > 1:
        raise click.exceptions.Exit(1)


COMMANDS = [release, sync, status]
