"""Where an existing repository keeps its Salt tree: the detection behind ``saltpipe init``.

:func:`detect` reads the working tree only (no Git, no Salt) and returns a :class:`Detection`: the file roots
(``states/``, ``salt/``, the repository's top as in a gitfs repository, or one root per ``*-formula/`` folder),
the formulas under them with their ``map.jinja`` / ``defaults.yaml`` / ``pillar.example``, extension
directories (``_modules/``...), top files, pillar trees, and what must not be served (docs, tests, pillar data).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import UsageError
from pipeline.layout import ALWAYS_EXCLUDED, RepoLayout

#: ``--layout`` values besides ``auto``: the root they mean.
LAYOUTS = {"states": "states", "salt": "salt", "srv": "srv/salt", "root": "."}
#: Tried in this order by ``--layout auto``; the repository's top comes last (it holds everything).
_CANDIDATES = ("states", "salt", "srv/salt")
#: Directories at the top that are never Salt content, and top-level files of a formula repository.
_NOT_SALT_DIRS = ("docs", "doc", "test", "tests", "bin", "node_modules", "kitchen", "spec", "pillar", "pillar_roots", "salt/fixtures")
_NOT_SALT_FILES = (
    "*.md", "*.rst", "LICENSE*", "AUTHORS*", "FORMULA", "Gemfile*", "kitchen*.yml", "*.gemspec",
    "release.config.js", "commitlint.config.js", "package.json", "package-lock.json", "pre-commit_semantic-release.sh",
    "Makefile", "tox.ini", "setup.cfg", "pyproject.toml",
)
_PILLAR_DIRS = ("pillar", "pillar_roots", "srv/pillar", "salt/pillar")
PILLAR_EXAMPLES = ("pillar.example", "pillar.example.yaml", "pillar.example.sls")
#: OS families formulas branch on, as written in map files (``'RedHat'``, ``Suse:``...).
OS_FAMILIES = ("Debian", "RedHat", "Suse", "Arch", "Gentoo", "FreeBSD", "OpenBSD", "Alpine", "MacOS", "Windows")
_FAMILY_RE = re.compile(r"""(?:['"]|^\s*)(%s)(?:['"]|\s*:)""" % "|".join(OS_FAMILIES), re.M)


@dataclass(frozen=True)
class Formula:
    """One formula: a directory of a root holding SLS, and the files that describe its data."""

    name: str
    path: Path
    sls: int
    map_jinja: bool
    defaults: Path | None
    pillar_examples: tuple[Path, ...]


@dataclass(frozen=True)
class Detection:
    """What ``saltpipe init`` found (paths absolute, roots repository-relative)."""

    repo: Path
    roots: tuple[str, ...]
    formulas: tuple[Formula, ...]
    extensions: tuple[str, ...]
    top_files: tuple[Path, ...]
    pillar_dirs: tuple[str, ...]
    exclude: tuple[str, ...]
    os_families: tuple[str, ...]
    loose_sls: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def layout(self) -> RepoLayout:
        return RepoLayout(self.roots, (), ALWAYS_EXCLUDED + self.exclude)


def _sls_files(root: Path, skip: tuple[str, ...] = ()) -> Iterator[Path]:
    for path in root.rglob("*.sls"):
        rel = path.relative_to(root).parts
        if any(p.startswith(".") for p in rel[:-1]) or any(path.is_relative_to(root / s) for s in skip):
            continue
        if path.name.startswith("pillar.example"):
            continue
        yield path


def _formula_repos(repo: Path) -> list[str]:
    """Top-level ``*-formula`` folders that each hold a formula directory: merged formula repositories."""
    out = []
    for d in sorted(repo.iterdir()):
        if d.is_dir() and d.name.endswith("-formula") and any(c.is_dir() and any(c.glob("*.sls")) for c in d.iterdir()):
            out.append(d.name)
    return out


def choose_roots(repo: Path, layout: str = "auto") -> tuple[str, ...]:
    """The roots for ``--layout`` (``auto`` or one of :data:`LAYOUTS`); a UsageError when nothing holds SLS."""
    if layout != "auto":
        if layout not in LAYOUTS:
            raise UsageError(f"--layout {layout}: unknown", hint=f"use auto or one of: {', '.join(LAYOUTS)}")
        root = LAYOUTS[layout]
        if not (repo / root).is_dir():
            raise UsageError(f"--layout {layout}: {repo / root} is not a directory", hint="use --layout auto to detect it")
        return (root,)
    for cand in _CANDIDATES:
        d = repo / cand
        skip = ("fixtures", "pillar") if cand == "salt" else ()
        if d.is_dir() and next(_sls_files(d, skip), None) is not None:
            return (cand,)
    repos = _formula_repos(repo)
    top_sls = [p for p in _sls_files(repo, tuple(n for n in _NOT_SALT_DIRS)) if p.parent == repo or p.parent.parent == repo]
    if repos and not top_sls:
        return tuple(repos)  # a gitfs remote per formula repository: one root each, merged like Salt does
    if next(_sls_files(repo, tuple(_NOT_SALT_DIRS) + tuple(repos)), None) is not None:
        return (".",)
    raise UsageError(
        f"{repo}: no .sls file found (looked in {', '.join(c + '/' for c in _CANDIDATES)}, *-formula/ and the top)",
        hint="run saltpipe init in the repository that holds your states, or pass --layout DIR-NAME",
    )


def detect(repo: Path, layout: str = "auto") -> Detection:
    """Scan ``repo`` (see the module docstring)."""
    repo = repo.resolve()
    roots = choose_roots(repo, layout)
    exclude: list[str] = []
    if roots == (".",):
        exclude.append(".*")
        for name in _NOT_SALT_DIRS:
            if (repo / name).is_dir():
                exclude.append(f"{name}/")
        for pattern in _NOT_SALT_FILES:
            if any(repo.glob(pattern)):
                exclude.append(pattern)
    elif any(r.endswith("-formula") for r in roots):
        exclude += [".*", "*.md", "*.rst"]
        for root in roots:
            for name in _NOT_SALT_DIRS:
                if (repo / root / name).is_dir():
                    exclude.append(f"{root}/{name}/")
            for pattern in _NOT_SALT_FILES:
                if pattern not in exclude and any((repo / root).glob(pattern)):
                    exclude.append(pattern)
            # Each formula repository's own pillar.example sits at the same salt:// path in every root.
            exclude += [f"{root}/{n}" for n in PILLAR_EXAMPLES if (repo / root / n).is_file()]
    pillar_dirs = tuple(p for p in _PILLAR_DIRS if (repo / p).is_dir() and any((repo / p).rglob("*.sls")))
    for p in pillar_dirs:
        if any(r == "." or p.startswith(r + "/") for r in roots) and f"{p}/" not in exclude:
            exclude.append(f"{p}/")  # pillar data must never be served by the fileserver
    probe = RepoLayout(roots, (), ALWAYS_EXCLUDED + tuple(exclude))
    formulas: list[Formula] = []
    top_files: list[Path] = []
    loose = 0
    families: set[str] = set()
    for root_rel in roots:
        root = repo if root_rel == "." else repo / root_rel
        if (root / "top.sls").is_file():
            top_files.append(root / "top.sls")
        for d in sorted(root.iterdir()):
            if not d.is_dir() or d.name.startswith((".", "_")) or probe.excludes(d.relative_to(repo).as_posix()):
                continue
            sls = [p for p in _sls_files(d) if not probe.excludes(p.relative_to(repo).as_posix())]
            if not sls:
                continue
            defaults = d / "defaults.yaml"
            examples = [d / n for n in PILLAR_EXAMPLES if (d / n).is_file()]
            # A formula repository keeps pillar.example next to the formula folder, at its top.
            examples += [root / n for n in PILLAR_EXAMPLES if root_rel != "." and (root / n).is_file() and len(roots) > 1]
            formulas.append(Formula(d.name, d, len(sls), (d / "map.jinja").is_file(), defaults if defaults.is_file() else None, tuple(examples)))
            for f in d.rglob("*"):
                if f.is_file() and f.suffix in (".jinja", ".yaml", ".yml", ".sls", ".j2"):
                    families |= set(_FAMILY_RE.findall(f.read_text(encoding="utf-8", errors="replace")))
        loose += sum(1 for p in root.glob("*.sls") if p.name != "top.sls" and not probe.excludes(p.relative_to(repo).as_posix()))
    top_examples = [repo / n for n in PILLAR_EXAMPLES if (repo / n).is_file()]
    notes = []
    if top_examples and formulas and roots == (".",):
        # One formula repository with its pillar.example at the top, as saltstack-formulas ship them.
        first = formulas[0]
        formulas[0] = Formula(first.name, first.path, first.sls, first.map_jinja, first.defaults, first.pillar_examples + tuple(top_examples))
    top_dirs = [d.name for d in repo.iterdir() if d.is_dir()]
    extensions = list(probe.auto_extensions(top_dirs))
    for root_rel in roots:
        root = repo if root_rel == "." else repo / root_rel
        extensions += [f"{root_rel}/{d.name}" if root_rel != "." else d.name for d in sorted(root.iterdir())
                       if d.is_dir() and d.name.startswith("_") and d.name != "__pycache__" and f"{d.name}" not in extensions]
    return Detection(
        repo=repo,
        roots=roots,
        formulas=tuple(formulas),
        extensions=tuple(dict.fromkeys(extensions)),
        top_files=tuple(top_files),
        pillar_dirs=pillar_dirs,
        exclude=tuple(dict.fromkeys(exclude)),
        os_families=tuple(f for f in OS_FAMILIES if f in families),
        loose_sls=loose,
        notes=tuple(notes),
    )
