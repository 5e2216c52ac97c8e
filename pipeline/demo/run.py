"""Running the demo: the repository and config steps, the list of every step in order, and the runner.

The demo builds a throwaway Git repository from the bundled content (:data:`CONTENT_DIRS`: ``salt/``, ``states/``,
``_modules/``, ``_states/``, ``_utils/``), commits it as an engineer would, and walks it through every pipeline stage. Each stage is a
:data:`pipeline.demo.model.Step`; :func:`steps` lists them (the MR checks from ``mr_checks``, the delivery from
``flow``)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import git

from pipeline.config import load_config
from pipeline.demo.flow import FLOW_STEPS, teardown
from pipeline.demo.model import DemoContext, DemoResult, DemoState, Step, StepResult
from pipeline.demo.mr_checks import mr_checks
from pipeline.errors import GitError

#: What an operator's fork carries; copied into the throwaway repository.
CONTENT_DIRS = ("salt", "states", "_modules", "_states", "_utils")


def _make_repo(ctx: DemoContext, state: DemoState) -> tuple[bool, list[str]]:
    target = ctx.workdir / "repo"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    copied = []
    for name in CONTENT_DIRS:
        src = ctx.source / name
        if not src.is_dir():
            raise GitError(
                f"{src}: bundled content directory is missing",
                hint="run the demo from a saltpipe checkout (or pass --repo)",
            )
        shutil.copytree(src, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        copied.append(name)
    repo = git.Repo.init(target, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Demo Engineer")
        cw.set_value("user", "email", "engineer@example.net")
    repo.git.add(A=True)
    commit = repo.index.commit("Initial import of Salt content")
    state.repo = repo
    state.commits["initial"] = commit.hexsha
    files = sum(1 for p in target.rglob("*") if p.is_file() and ".git" not in p.parts)
    return True, [
        f"throwaway repository {target}",
        f"{files} files from {', '.join(copied)}; commit {commit.hexsha[:12]} on main",
    ]


def _check_config(ctx: DemoContext, state: DemoState) -> tuple[bool, list[str]]:
    assert state.repo is not None
    cfg = load_config(Path(state.repo.working_tree_dir) / "salt" / "pipeline.yaml")
    state.config = cfg
    lines = [f"salt/pipeline.yaml valid; promotion order: {' -> '.join(cfg.promotion_order())}"]
    for name in cfg.promotion_order():
        env = cfg.environments[name]
        syndics = ", ".join(s.name for s in env.syndics)
        lines.append(
            f"{name}: target {env.target!r}, syndics [{syndics}], {env.describe_schedule()}, "
            f"approvals {env.approvals_required}"
        )
    return True, lines


def steps() -> list[tuple[str, Step]]:
    """The demo's steps, in order. Each later pipeline stage adds its own here."""
    return [
        ("repository", _make_repo),
        ("config", _check_config),
        ("mr checks", mr_checks),
        *FLOW_STEPS,
    ]


def run_demo(
    ctx: DemoContext,
    on_step: Callable[[StepResult], None] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run every step in order, stopping after the first that fails; then tear down what the steps started
    (the topology unless ``ctx.keep_topology``), also when a step raised. Errors from a step propagate.

    ``on_start(name)`` is called before a step runs (before any of its ``ctx.progress`` lines), ``on_step`` with
    its result after it ran."""
    state = DemoState()
    results: list[StepResult] = []
    try:
        for name, step in steps():
            if on_start:
                on_start(name)
            started = time.monotonic()
            ok, lines = step(ctx, state)
            result = StepResult(name=name, ok=ok, lines=tuple(lines), seconds=time.monotonic() - started)
            results.append(result)
            if on_step:
                on_step(result)
            if not ok:
                break
    finally:
        if on_start:
            on_start("teardown")
        started = time.monotonic()
        lines = teardown(state.flow, ctx.keep_topology)
        if lines:
            result = StepResult(name="teardown", ok=True, lines=tuple(lines), seconds=time.monotonic() - started)
            results.append(result)
            if on_step:
                on_step(result)
    return DemoResult(workdir=ctx.workdir, steps=tuple(results))


def default_workdir() -> Path:
    """A new short directory under /tmp: the local topology's unix socket paths must stay under 107 bytes."""
    return Path(tempfile.mkdtemp(prefix="spdemo-", dir="/tmp"))
