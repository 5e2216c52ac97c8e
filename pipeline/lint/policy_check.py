"""``saltpipe policy check [PATH...]``: the policy alone, on files from anywhere.

Paths are classified by extension: ``.sls`` (rendered with Salt where it can be - inside the repository's
``states/`` with includes and imports resolving, elsewhere with the file's own directory as file_roots - and
read as text where it cannot), ``.py``, and Jinja templates (``.jinja``, ``.j2``...). No pylint and no
structure checks: that is ``saltpipe lint``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import PipelineConfig
from pipeline.errors import UsageError
from pipeline.findings import Report
from pipeline.layout import RepoLayout
from pipeline.lint.analysis import Analysis, SlsTarget, check_python, check_templates, render_and_check
from pipeline.lint.fixtures import environment_minions
from pipeline.lint.run import resolve_policy
from pipeline.lint.sources import STATES_DIR, TEMPLATE_SUFFIXES, SourceTree, sls_name
from pipeline.policy.engine import PolicyEngine, finalize
from pipeline.policy.inventory import custom_functions
from pipeline.policy.rules import all_rules

_SKIP = frozenset({".git", "__pycache__", ".tox", ".venv", "node_modules"})


@dataclass(frozen=True)
class PolicyCheckOptions:
    """``paths`` to check (empty: the repository's Salt tree by its layout, as lint sees it); ``repo`` for display paths,
    fixtures and the default policy file."""

    paths: tuple[Path, ...]
    repo: Path
    config: PipelineConfig | None = None
    policy_path: Path | None = None
    environments: tuple[str, ...] = ()
    today: dt.date | None = None


def classify(paths: Iterable[Path]) -> tuple[list[Path], list[Path], list[Path]]:
    """``(sls, python, templates)``; a named file of another kind is a usage error, a directory is walked."""
    sls: list[Path] = []
    python: list[Path] = []
    templates: list[Path] = []

    def add(path: Path, explicit: bool) -> None:
        if path.suffix == ".sls":
            sls.append(path)
        elif path.suffix == ".py":
            python.append(path)
        elif path.suffix in TEMPLATE_SUFFIXES:
            templates.append(path)
        elif explicit:
            raise UsageError(
                f"{path}: cannot tell what kind of file this is from its extension",
                hint=f"policy check reads .sls, .py and {', '.join(TEMPLATE_SUFFIXES)} files",
            )

    for given in paths:
        path = given.resolve()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not any(p in _SKIP or p.startswith(".") for p in child.relative_to(path).parts[:-1]):
                    add(child, explicit=False)
        elif path.is_file():
            add(path, explicit=True)
        else:
            raise UsageError(f"{given}: no such file or directory")
    return sls, python, templates


def _file_root(path: Path) -> Path:
    """The file_roots an SLS outside the repository most likely lives in: the nearest directory above it
    with a ``top.sls`` or named ``states``, else its own directory (so includes and imports resolve)."""
    for parent in path.parents:
        if (parent / "top.sls").is_file() or parent.name == STATES_DIR:
            return parent
    return path.parent


def check_paths(options: PolicyCheckOptions) -> Report:
    """Run the policy over the given paths and return the report (waivers and severities applied)."""
    repo = options.repo.resolve()
    policy, policy_shown = resolve_policy(repo, options.policy_path)
    layout = RepoLayout.of(options.config.layout if options.config else None)
    scanned = SourceTree.scan(repo, layout=layout)
    paths = options.paths
    if not paths:
        # The layout's own files: what lint checks and a release holds (excluded files left out).
        paths = tuple(scanned.all_checked_files())
    sls, python, templates = classify(paths)
    roots = [repo / r if r != "." else repo for r in layout.roots]
    tree = SourceTree(repo=repo, states_root=roots[0], extra_roots=tuple(roots[1:]))
    # The repository's own modules (allowed where Salt's allow-list does not know a function), and any given.
    extensions = [*scanned.extension_python, *python]
    engine = PolicyEngine(policy, all_rules(), custom_functions(extensions))
    out = Analysis()
    check_python(engine, (tree.source(p) for p in python), out, report_syntax=True)
    sources = [(tree.source(p), tree.pipe_of(p)) for p in sls] + [(tree.source(p), ("jinja",)) for p in templates]
    blocked = check_templates(engine, sources, out)
    targets = []
    for path in sls:
        if path.name == "top.sls":
            continue  # top data, not states: its Jinja was checked above
        held = tree.root_of(path)
        root = tree.states_root if held is not None else _file_root(path)
        targets.append(SlsTarget(sls_name(held or root, path), path, root))
    if targets:
        minions = environment_minions(options.config, repo, options.environments)
        render_and_check(engine, tree, targets, minions, out, blocked=blocked, report_render_errors=False)
    final = finalize(out.findings, policy, policy_path=policy_shown, today=options.today, checked=out.checked)
    return out.report("saltpipe policy check", final)
