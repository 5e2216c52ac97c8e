"""``saltpipe lint``: every static check a merge request must pass, as one stage.

:func:`run_lint` is a function of a frozen :class:`LintOptions` that returns a :class:`LintResult` (a
:class:`~pipeline.findings.Report` plus timings). Findings never raise; only a stage that cannot run at all
(a bad policy or fixture file, an unknown revision) raises a :class:`~pipeline.errors.SaltpipeError`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import PipelineConfig
from pipeline.findings import Report
from pipeline.lint.analysis import Analysis, SlsTarget, check_python, check_templates, outside_link_findings, render_and_check
from pipeline.lint.bounds import RenderLimits
from pipeline.lint.changes import Selection, changes_since, select
from pipeline.lint.fixtures import environment_minions
from pipeline.lint.pylint_runner import start_pylint
from pipeline.layout import RepoLayout
from pipeline.lint.sources import SourceTree, root_clash_findings
from pipeline.lint.statefuncs import build_index
from pipeline.lint.structure import LINT_RULES
from pipeline.policy.config import DEFAULT_POLICY, PolicyConfig, load_policy
from pipeline.policy.engine import META_RULES, PolicyEngine, finalize
from pipeline.policy.inventory import custom_functions
from pipeline.policy.rules import all_rules, rule_ids


def known_rule_ids() -> set[str]:
    """Every finding id saltpipe can report (policy rules, lint checks, engine findings); ``pylint-*`` too."""
    return set(rule_ids()) | set(LINT_RULES) | set(META_RULES)


@dataclass(frozen=True)
class LintOptions:
    """What to lint and how.

    ``config`` gives the environments and their fixtures (None renders with empty grains and pillar);
    ``policy_path`` None means ``<repo>/salt/policy.yaml`` when it exists, else the built-in defaults;
    ``environments`` empty means all, in promotion order; ``changed_since`` a Git revision for MR mode;
    ``limits`` bound every render (size, YAML alias expansion, seconds per file).
    """

    repo: Path
    config: PipelineConfig | None = None
    policy_path: Path | None = None
    environments: tuple[str, ...] = ()
    changed_since: str | None = None
    pylint: bool = True
    today: dt.date | None = None
    limits: RenderLimits = field(default_factory=RenderLimits)


@dataclass(frozen=True)
class LintResult:
    """The report, what was selected, and seconds per phase (``total``, ``render``, ``pylint``...)."""

    report: Report
    selection: Selection
    timings: Mapping[str, float] = field(default_factory=dict)


def resolve_policy(repo: Path, policy_path: Path | None) -> tuple[PolicyConfig, str]:
    """The policy to apply and its display path."""
    path = policy_path or repo / DEFAULT_POLICY
    if policy_path is None and not path.is_file():
        return PolicyConfig(), DEFAULT_POLICY.as_posix()
    policy = load_policy(path, known_rule_ids())
    try:
        shown = path.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        shown = path.as_posix()
    return policy, shown


def run_lint(options: LintOptions) -> LintResult:
    """Run pylint, the SLS render and structure checks, and the policy over ``options.repo``."""
    started = time.perf_counter()
    repo = options.repo.resolve()
    policy, policy_shown = resolve_policy(repo, options.policy_path)
    tree = SourceTree.scan(repo, layout=RepoLayout.of(options.config.layout if options.config else None))
    if options.changed_since:
        selection = select(tree, changes_since(repo, options.changed_since), policy_shown)
    else:
        selection = Selection(full=True, reason="full run")
    engine = PolicyEngine(policy, all_rules(), custom_functions(tree.extension_python))
    out = Analysis()
    out.findings += outside_link_findings(tree)
    out.findings += root_clash_findings(tree)
    if policy.source is None:
        out.notes.append(f"no {policy_shown}: the built-in policy defaults apply")
    if not selection.full:
        out.notes.append(f"--changed-since: {selection.reason}; checking {len(selection.sls)} SLS and {len(selection.files)} file(s)")

    extension_py = [p for p in tree.extension_python if selection.includes_file(p)]
    project_py = [p for p in tree.project_python if selection.includes_file(p)]
    pylint = start_pylint(repo, extension_py, project_py) if options.pylint else None

    t = time.perf_counter()
    check_python(engine, (tree.source(p) for p in extension_py), out, report_syntax=pylint is None)
    names = sorted(tree.sls) if selection.full else sorted(selection.sls)
    template_paths = [p for p in tree.templates if selection.includes_file(p)]
    if tree.top is not None:
        template_paths.append(tree.top)
    jinja_sources = [(tree.source(tree.sls[n]), tree.pipe_of(tree.sls[n])) for n in names]
    jinja_sources += [(tree.source(p), tree.pipe_of(p) if p.suffix == ".sls" else ("jinja",)) for p in template_paths]
    blocked = check_templates(engine, jinja_sources, out)
    out.timings["static"] = time.perf_counter() - t

    minions = environment_minions(options.config, repo, options.environments)
    t = time.perf_counter()
    index = build_index(p for p in tree.extension_python if p.parent.name == "_states")
    out.timings["index"] = time.perf_counter() - t
    targets = [SlsTarget(n, tree.sls[n], tree.states_root) for n in names]
    render_and_check(
        engine,
        tree,
        targets,
        minions,
        out,
        blocked=blocked,
        index=index,
        selected=None if selection.full else selection.sls,
        check_top=True,
        limits=options.limits,
    )
    if tree.top is not None:
        out.checked.add(tree.rel(tree.top))
    out.stats["minions"] = len(minions)

    if pylint is not None:
        t = time.perf_counter()
        for process in pylint:
            out.findings += process.collect()
        out.timings["pylint_wait"] = time.perf_counter() - t
        out.checked |= {tree.rel(p) for p in extension_py + project_py}

    final = finalize(
        out.findings,
        policy,
        policy_path=policy_shown,
        today=options.today,
        checked=out.checked,
        policy_changed=selection.policy_changed,
    )
    out.timings["total"] = time.perf_counter() - started
    return LintResult(report=out.report("saltpipe lint", final), selection=selection, timings=dict(out.timings))
