"""``saltpipe review`` and ``saltpipe report mr-note``: the GitLab side of a merge request.

Both read GitLab's CI variables (``CI_SERVER_URL``, ``CI_PROJECT_ID``, ``CI_MERGE_REQUEST_IID``,
``CI_COMMIT_SHA`` ...) and the token ``SALTPIPE_GITLAB_TOKEN``; options override what a human running them by
hand must give. ``saltpipe review --merged`` runs in the default branch's pipeline (``CI_COMMIT_SHA``).
Exit codes: 0 approved / note written; 1 not approved; 2 usage, config or GitLab error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import click

from pipeline.cli_options import file_option, text_or_json
from pipeline.context import AppContext
from pipeline.errors import EXIT_FINDINGS, UsageError
from pipeline.gitlab import CiEnvironment, client_from_ci
from pipeline.mrnote import build_report, publish_note, render_markdown
from pipeline.review import ReviewRequest, ReviewResult, review, review_merged


def _ci(**overrides: object) -> CiEnvironment:
    ci = CiEnvironment.from_environ(os.environ)
    given = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(ci, **given) if given else ci


def _render_text(result: ReviewResult) -> str:
    verdict = "APPROVED" if result.approved else "NOT APPROVED"
    if result.merged_sha is None:
        lines = [f"review gate for !{result.iid} at {result.head_sha[:12]}: {verdict}"]
    else:
        source = f"merged by !{result.iid}, head {result.head_sha[:12]}" if result.iid else "no merge request"
        lines = [f"review gate for {result.merged_sha[:12]} on {result.branch} ({source}): {verdict}"]
    width = max(len(c.id) for c in result.checks)
    for check in result.checks:
        mark = "ok  " if check.ok else "FAIL"
        lines.append(f"  {mark}  {check.id:<{width}}  {check.message}")
        lines.extend(f"  {'':4}  {'':<{width}}    {detail}" for detail in check.details)
    if result.approvers:
        lines.append("approvals:")
        for v in result.approvers:
            lines.append(f"  {'counts ' if v.counts else 'ignored'}  {v.why}")
    return "\n".join(lines)


@click.command("review")
@click.option("--mr", "mr_iid", type=int, default=None, help="Merge request IID (default: CI_MERGE_REQUEST_IID).")
@click.option(
    "--sha",
    default=None,
    help="Head commit the approvals must stand for (default: CI_MERGE_REQUEST_SOURCE_BRANCH_SHA, else "
    "CI_COMMIT_SHA); with --merged, the default branch's commit to check (default: CI_COMMIT_SHA).",
)
@click.option(
    "--merged",
    is_flag=True,
    help="After the merge: find the merge request that brought the commit to the default branch and run the "
    "gate on it, at the head it was merged with (deploy pipelines).",
)
@text_or_json
@file_option("--output", help="Also write the verdict as JSON here, whatever it is (`release build --review FILE` "
                             "records the merge request it names).")
@click.pass_obj
def review_command(app: AppContext, mr_iid: int | None, sha: str | None, merged: bool, fmt: str,
                   output: Path | None) -> None:
    """Gate a release on code review: approved for this exact head by enough users other than the author
    (one from the security group when security paths change), and the merge request pipeline passed.

    With --merged, gate a commit of the default branch: it must be the merge commit, squash commit or
    (fast-forward) head of exactly one merge request merged into that branch, and that merge request must
    pass the same gate at its merged head.

    Exit 0 approved; 1 not approved, with every reason (with --merged: also no or several merge requests);
    2 when GitLab cannot be reached, refuses the token or answers an error (the gate fails closed).
    """
    settings = app.config.review  # a config error stops here, before GitLab is asked anything
    if merged:
        if mr_iid is not None:
            raise UsageError("--mr and --merged exclude each other", hint="--merged finds the merge request itself")
        ci = _ci(commit_sha=sha)
        ci.require("server_url", "project_id", "token", "commit_sha")
        assert ci.commit_sha is not None
        result = review_merged(client_from_ci(ci), ci.commit_sha, settings=settings)
    else:
        ci = _ci(mr_iid=mr_iid, head_sha=sha)
        ci.require("server_url", "project_id", "token", "mr_iid", "head_sha")
        assert ci.mr_iid is not None and ci.head_sha is not None
        result = review(
            ReviewRequest(
                client=client_from_ci(ci),
                iid=ci.mr_iid,
                head_sha=ci.head_sha,
                settings=settings,
                commit_sha=ci.commit_sha,
                pipeline_id=ci.pipeline_id,
                job_id=ci.job_id,
            )
        )
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(_render_text(result))
    if not result.approved:
        # SystemExit, not click's Exit: pipeline.cli.main runs click with standalone_mode=False, where click
        # turns Exit into a return value that main() does not pass on.
        sys.exit(EXIT_FINDINGS)


@click.group("report")
def report_group() -> None:
    """Reports for merge requests."""


@report_group.command("mr-note")
@file_option("--lint-json", "lint_json", multiple=True,
             help="JSON of 'saltpipe lint --format json' (repeatable: lint and policy runs are merged).")
@file_option("--junit", multiple=True, help="JUnit XML test report (repeatable).")
@file_option("--impact-json", help="JSON of 'saltpipe impact ENV'.")
@click.option("--mr", "mr_iid", type=int, default=None, help="Merge request IID (default: CI_MERGE_REQUEST_IID).")
@click.option("--dry-run", is_flag=True, help="Print the note instead of writing it; GitLab is not contacted.")
def mr_note(
    lint_json: tuple[Path, ...], junit: tuple[Path, ...], impact_json: Path | None, mr_iid: int | None, dry_run: bool
) -> None:
    """Write saltpipe's note on the merge request: lint and policy findings, test results, impact analysis.

    The note is found again by a hidden marker and edited in place on every pipeline, never duplicated.
    Exit 0 when written (whatever it reports: the lint and test jobs are the gates); 2 on bad input or a
    GitLab error.
    """
    ci = _ci(mr_iid=mr_iid)
    report = build_report(
        lint_json=lint_json,
        junit=junit,
        impact_json=impact_json,
        head_sha=ci.head_sha,
        pipeline_url=ci.pipeline_url,
    )
    body = render_markdown(report)
    if dry_run:
        click.echo(body)
        return
    ci.require("server_url", "project_id", "token", "mr_iid")
    assert ci.mr_iid is not None
    outcome = publish_note(client_from_ci(ci), ci.mr_iid, body)
    click.echo(f"merge request !{ci.mr_iid}: note {outcome.note_id} {outcome.action}")
    if outcome.duplicates:
        click.echo(
            f"note(s) {', '.join(map(str, outcome.duplicates))} also carry saltpipe's marker (left by racing "
            "pipelines); they were left alone - delete them by hand",
            err=True,
        )


COMMANDS = [review_command, report_group]
