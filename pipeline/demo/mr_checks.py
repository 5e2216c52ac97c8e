"""The demo's MR-checks step: the bundled content passes lint, a clean MR passes, an MR adding ``cmd.run`` is
blocked with the finding. Listed in :func:`pipeline.demo.run.steps`; leaves the throwaway repo on ``main``."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import load_config
from pipeline.demo.model import DemoContext, DemoState
from pipeline.lint.run import LintOptions, LintResult, run_lint

CLEAN_MR = (
    "states/base/issue.sls",
    """\
{#- The network login banner. -#}
base-issue-net:
  file.managed:
    - name: {{ salt['pillar.get']('base:root', '') }}/etc/issue.net
    - contents: "Authorized access only. Changes go through saltpipe merge requests."
    - mode: "0644"
""",
    "base: /etc/issue.net banner",
)
BLOCKED_MR = (
    "states/app/restart.sls",
    """\
{#- "Quick fix": restart the application by hand. -#}
app-restart-now:
  cmd.run:
    - name: systemctl restart orders-api
""",
    "app: restart the service with cmd.run",
)


def _summary(result: LintResult) -> str:
    stats = result.report.stats
    verdict = "passed" if result.report.ok else "BLOCKED"
    return f"{verdict}: {result.report.summary()} ({stats.get('sls', 0)} SLS x {stats.get('minions', 0)} fixture minions rendered by Salt)"


def mr_checks(ctx: DemoContext, state: DemoState) -> tuple[bool, list[str]]:
    """Run ``saltpipe lint`` on main, on a clean MR branch and on an MR that adds a ``cmd.run`` state."""
    assert state.repo is not None and state.repo.working_tree_dir is not None
    repo = state.repo
    root = Path(repo.working_tree_dir)
    cfg = state.config or load_config(root / "salt" / "pipeline.yaml")
    lines: list[str] = []

    baseline = run_lint(LintOptions(repo=root, config=cfg))
    lines.append(f"main: saltpipe lint (pylint, render, structure, policy) {_summary(baseline)}")

    outcomes = {}
    for branch, (rel, text, title) in (("mr/issue-banner", CLEAN_MR), ("mr/restart-hack", BLOCKED_MR)):
        repo.git.checkout("-b", branch, "main")
        (root / rel).write_text(text, encoding="utf-8")
        repo.index.add([rel])
        repo.index.commit(title)
        result = run_lint(LintOptions(repo=root, config=cfg, changed_since="main"))
        outcomes[branch] = result
        lines.append(f"MR {branch} ({title}): saltpipe lint --changed-since main {_summary(result)}")
        for finding in result.report.findings:
            if finding.severity.value == "error":
                state_id = f" [state {finding.state_id}]" if finding.state_id else ""
                lines.append(f"  {finding.path}:{finding.line} {finding.rule}{state_id}: {finding.message}")
        repo.git.checkout("main")
    state.commits["mr-blocked"] = repo.commit("mr/restart-hack").hexsha

    blocked = outcomes["mr/restart-hack"].report
    ok = (
        baseline.report.ok
        and outcomes["mr/issue-banner"].report.ok
        and not blocked.ok
        and any(f.rule == "no-cmd-module" and f.path == BLOCKED_MR[0] for f in blocked.findings)
    )
    lines.append("back on main; the blocked MR stays unmerged")
    return ok, lines
