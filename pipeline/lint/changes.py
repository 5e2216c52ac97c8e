"""``--changed-since REF``: what an MR changed, and which files that obliges lint to look at.

The changed files are the difference between the merge base of ``REF`` and ``HEAD`` and the working tree
(committed, staged, unstaged and untracked files alike, so a local run sees what CI will see after a commit).
Lint then checks the changed files plus every SLS that includes one of them or is included by one (both
transitively, Jinja imports counted as includes), found from the files' text without rendering.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import git

from pipeline.errors import GitError
from pipeline.lint.sources import SourceTree, sls_name

#: Changes to these force a full run (everything depends on them).
GLOBAL_INPUTS = ("salt/policy.yaml", "salt/pipeline.yaml", "salt/fixtures/", ".pylintrc")


@dataclass(frozen=True)
class ChangeSet:
    """Repository-relative POSIX paths changed since ``base`` (the merge base of ``ref`` and HEAD)."""

    ref: str
    base: str
    changed: frozenset[str]
    deleted: frozenset[str] = frozenset()

    @property
    def all(self) -> frozenset[str]:
        return self.changed | self.deleted


def changes_since(repo_path: Path, ref: str) -> ChangeSet:
    """Files changed between the merge base of ``ref`` and HEAD, and the working tree."""
    try:
        repo = git.Repo(repo_path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise GitError(f"{repo_path} is not a Git repository", hint="--changed-since needs a Git checkout") from exc
    try:
        target = repo.commit(ref)
    except (git.BadName, ValueError, git.GitCommandError) as exc:
        raise GitError(f"unknown revision {ref!r}", hint="fetch it first (git fetch origin <branch>) or name a commit") from exc
    bases = repo.merge_base(target, repo.head.commit)
    base = bases[0] if bases else target
    changed: set[str] = set()
    deleted: set[str] = set()
    for diff in base.diff(None):
        if diff.deleted_file:
            deleted.add(diff.a_path)
            continue
        if diff.renamed_file and diff.a_path:
            deleted.add(diff.a_path)
        changed.add(diff.b_path or diff.a_path)
    changed |= set(repo.untracked_files)
    deleted |= {p for p in changed if not (repo_path / p).exists()}
    changed = {p for p in changed if (repo_path / p).exists()}
    return ChangeSet(ref=ref, base=base.hexsha, changed=frozenset(changed), deleted=frozenset(deleted))


@dataclass(frozen=True)
class Selection:
    """What a lint run checks. ``full`` means everything; otherwise only the listed files and SLS."""

    full: bool
    sls: frozenset[str] = frozenset()
    files: frozenset[Path] = frozenset()
    policy_changed: bool = False
    reason: str = ""
    changed: frozenset[str] = field(default_factory=frozenset)

    def includes_file(self, path: Path) -> bool:
        return self.full or path in self.files


def select(tree: SourceTree, changes: ChangeSet, policy_rel: str = "salt/policy.yaml") -> Selection:
    """The files and SLS a ``--changed-since`` run must check (see the module docstring)."""
    policy_changed = policy_rel in changes.all
    forcing = sorted(p for p in changes.all if p == policy_rel or any(p == g or (g.endswith("/") and p.startswith(g)) for g in GLOBAL_INPUTS))
    if forcing:
        return Selection(full=True, policy_changed=policy_changed, reason=f"{', '.join(forcing)} changed: everything depends on it", changed=changes.all)

    states = tree.states_root
    # Dependency graph over node keys "sls:<name>" and "file:<states-relative path>".
    node_of: dict[Path, str] = {}
    for name, path in tree.sls.items():
        node_of[path] = f"sls:{name}"
    for path in tree.templates:
        node_of[path] = f"file:{path.relative_to(tree.root_of(path) or states).as_posix()}"
    if tree.top:
        node_of[tree.top] = "file:top.sls"
    down: dict[str, set[str]] = {}
    up: dict[str, set[str]] = {}
    for path, node in node_of.items():
        for dep in tree.text_dependencies(path):
            down.setdefault(node, set()).add(dep)
            up.setdefault(dep, set()).add(node)

    touched: set[str] = set()
    files: set[Path] = set()
    for rel in changes.all:
        path = (tree.repo / rel).resolve()
        root = tree.root_of(path)
        if root is not None:
            inner = path.relative_to(root)
            touched.add(f"file:{inner.as_posix()}")
            if inner.suffix == ".sls":
                touched.add(f"sls:{sls_name(Path('.'), inner)}")
        if path.exists() and path.suffix == ".py":
            files.add(path)
    # Everything that includes a changed file (transitively), then everything those include.
    affected = _reach(_reach(touched, up), down)
    names = frozenset(n.removeprefix("sls:") for n in affected if n.startswith("sls:") and n.removeprefix("sls:") in tree.sls)
    for path, node in node_of.items():
        if node in affected:
            files.add(path)
    return Selection(
        full=False,
        sls=names,
        files=frozenset(files),
        policy_changed=False,
        reason=f"{len(changes.all)} changed file(s) since {changes.ref} ({changes.base[:12]})",
        changed=changes.all,
    )


def _reach(start: Iterable[str], edges: Mapping[str, Iterable[str]]) -> set[str]:
    """``start`` and every node reachable from it along ``edges``."""
    seen = set(start)
    todo = list(seen)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen
