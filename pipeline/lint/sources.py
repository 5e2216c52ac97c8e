"""The checked tree: which files are SLS, templates and Python, and how SLS names map to files.

Layout (``layout:`` in salt/pipeline.yaml, :mod:`pipeline.layout`): by default ``states/`` is the Salt file_roots
(``top.sls``, formulas, their ``.jinja`` templates) and Salt extension modules live in ``_modules/``, ``_states/``
and any other ``_*/`` directory at the top of the repository (or under ``states/``); an adopted repository may
serve its top or ``salt/`` instead, with more roots and extension directories anywhere. saltpipe's own code is
``pipeline/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.findings import Finding, Severity
from pipeline.layout import RepoLayout
from pipeline.policy.model import SourceText

STATES_DIR = "states"
#: The finding of a path two roots of ``layout`` both hold.
LAYOUT_ROOT_CLASH = "layout-root-clash"
TEMPLATE_SUFFIXES = (".jinja", ".j2", ".jinja2", ".tmpl", ".tpl")
#: Renderers whose SLS text is Python.
PYTHON_RENDERERS = frozenset({"py", "pyobjects", "pydsl"})
_SKIP_DIRS = frozenset({"__pycache__", "node_modules"})
# Rule fixtures are deliberately bad code: not saltpipe's own code to lint.
_PROJECT_SKIP_DIRS = _SKIP_DIRS | {"fixtures"}
_OLD_STYLE = {"yaml_jinja": "jinja|yaml", "yaml_mako": "mako|yaml", "yaml_wempy": "wempy|yaml", "json_jinja": "jinja|json", "json_mako": "mako|json", "json_wempy": "wempy|json"}

_INCLUDE_ITEM_RE = re.compile(r"""^\s*-\s+['"]?(?P<name>[\w.*\-/]+)['"]?\s*(?::\s*['"]?(?P<value>[\w.*\-/]+)['"]?)?\s*(?:#.*)?$""")
_JINJA_REF_RE = re.compile(r"""\{%-?\s*(?:from|import|include)\s+['"](?P<path>[^'"]+)['"]""")


def render_pipe(shebang: str | None, default: str = "jinja|yaml") -> tuple[str, ...]:
    """Renderer names of an SLS: ``#!jinja|yaml`` -> ``("jinja", "yaml")``; old ``#!yaml_jinja`` too."""
    pipe = shebang if shebang else default
    pipe = _OLD_STYLE.get(pipe.strip(), pipe)
    return tuple(part.strip().split(" ", 1)[0] for part in pipe.split("|") if part.strip())


def sls_name(states_root: Path, path: Path) -> str:
    """``states/web/init.sls`` -> ``web``; ``states/web/tls.sls`` -> ``web.tls``."""
    rel = path.relative_to(states_root).with_suffix("")
    parts = list(rel.parts)
    if parts and parts[-1] == "init" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def resolve_relative(name: str, current: str, current_is_init: bool) -> str | None:
    """Salt's relative include: ``.tls`` in ``web`` (web/init.sls) -> ``web.tls``; None when it climbs out."""
    match = re.match(r"^(\.+)(.*)$", name)
    if not match:
        return name
    levels, rest = match.groups()
    comps = current.split(".")
    if current_is_init:
        comps.append("init")
    if len(levels) > len(comps):
        return None
    return ".".join(comps[: -len(levels)] + [rest])


@dataclass
class SourceTree:
    """Every file lint looks at, scanned once. Paths are absolute; :meth:`rel` gives the display path."""

    repo: Path
    states_root: Path
    #: More roots of saltenv base after ``states_root``, in Salt's order (``layout.roots``).
    extra_roots: tuple[Path, ...] = ()
    sls: dict[str, Path] = field(default_factory=dict)
    top: Path | None = None
    templates: list[Path] = field(default_factory=list)
    extension_python: list[Path] = field(default_factory=list)
    project_python: list[Path] = field(default_factory=list)
    #: Symlinks in the checked tree (files or directories) that point outside the repository: never read.
    outside: list[Path] = field(default_factory=list)
    #: ``(file, the file of an earlier root at the same salt:// path)``: Salt would serve only the earlier one,
    #: and ``release build`` refuses the commit (``layout.roots``).
    clashes: list[tuple[Path, Path]] = field(default_factory=list)
    _texts: dict[Path, SourceText] = field(default_factory=dict, repr=False)

    @classmethod
    def scan(cls, repo: Path, states_dir: str = STATES_DIR, layout: RepoLayout | None = None) -> SourceTree:
        """Scan ``repo`` by ``layout`` (default: ``states_dir`` as the only root, ``_*/`` at the top)."""
        repo = repo.resolve()
        layout = layout or RepoLayout(roots=(states_dir,))
        roots = [repo / r if r != "." else repo for r in layout.roots]
        tree = cls(repo=repo, states_root=roots[0], extra_roots=tuple(roots[1:]))
        served: dict[Path, Path] = {}
        for root in roots:
            if not root.is_dir():
                continue
            tree.outside += _outside_links(root, repo)
            for path in sorted(_files(root)):
                if path in tree.outside or layout.excludes(path.relative_to(repo).as_posix()):
                    continue
                first = served.setdefault(path.relative_to(root), path)
                if first != path:
                    tree.clashes.append((path, first))
                    continue
                if path.suffix == ".sls":
                    if path == root / "top.sls":
                        # Salt uses the first top file in file_roots order.
                        tree.top = tree.top or path
                        continue
                    name = sls_name(root, path)
                    # Salt prefers web.sls over web/init.sls.
                    if name not in tree.sls or path.name != "init.sls":
                        tree.sls[name] = path
                elif path.suffix in TEMPLATE_SUFFIXES:
                    tree.templates.append(path)
                elif path.suffix == ".py" and any(p.startswith("_") for p in path.relative_to(root).parts[:-1]):
                    tree.extension_python.append(path)
        top_names = [d.name for d in repo.iterdir() if d.is_dir()] if repo.is_dir() else []
        for ext in layout.auto_extensions(top_names):
            ext_dir = repo / ext
            if ext_dir.is_dir() and ext_dir.name not in _SKIP_DIRS:
                links = _outside_links(ext_dir, repo) if not ext_dir.is_symlink() else [ext_dir]
                tree.outside += links
                tree.extension_python += sorted(
                    p for p in _files(ext_dir)
                    if p.suffix == ".py" and p not in links and not layout.excludes(p.relative_to(repo).as_posix())
                )
        pipeline_dir = repo / "pipeline"
        if pipeline_dir.is_dir():
            tree.project_python = sorted(p for p in _files(pipeline_dir, _PROJECT_SKIP_DIRS) if p.suffix == ".py")
        return tree

    @property
    def roots(self) -> tuple[Path, ...]:
        """Every root of saltenv base, in Salt's order."""
        return (self.states_root, *self.extra_roots)

    def root_of(self, path: Path) -> Path | None:
        """The root holding ``path`` (the most specific one), or None."""
        held = [r for r in self.roots if path.is_relative_to(r)]
        return max(held, key=lambda r: len(r.parts)) if held else None

    def rel(self, path: Path) -> str:
        """Display path: relative to the repository when inside it, POSIX separators."""
        try:
            return path.resolve().relative_to(self.repo).as_posix()
        except ValueError:
            return path.as_posix()

    def link_rel(self, path: Path) -> str:
        """Display path of a symlink itself (:meth:`rel` shows where it points)."""
        return path.relative_to(self.repo).as_posix()

    def source(self, path: Path) -> SourceText:
        """The file's text (read once), undecodable bytes replaced."""
        if path not in self._texts:
            self._texts[path] = SourceText(self.rel(path), path.read_text(encoding="utf-8", errors="replace"))
        return self._texts[path]

    def name_of(self, path: Path) -> str | None:
        if path.suffix != ".sls":
            return None
        return sls_name(self.root_of(path) or self.states_root, path)

    def pipe_of(self, path: Path) -> tuple[str, ...]:
        return render_pipe(self.source(path).shebang)

    def resolve_include(self, entry: object, current: str) -> tuple[str | None, str]:
        """``(resolved sls name or None if it climbs out of the tree, as written)`` of one include entry."""
        if isinstance(entry, dict) and entry:
            entry = next(iter(entry.values()))
        raw = str(entry)
        current_path = self.sls.get(current)
        is_init = bool(current_path and current_path.name == "init.sls")
        return resolve_relative(raw, current, is_init), raw

    def matching(self, pattern: str) -> list[str]:
        """SLS names matching ``pattern`` (Salt allows globs in includes and top files)."""
        if "*" in pattern or "?" in pattern or "[" in pattern:
            import fnmatch

            return sorted(n for n in self.sls if fnmatch.fnmatchcase(n, pattern))
        return [pattern] if pattern in self.sls else []

    def text_dependencies(self, path: Path) -> Iterator[str]:
        """What a file refers to, read from its text without rendering: ``sls:<name>`` for includes,
        ``file:<states-relative path>`` for Jinja ``import``/``from``/``include``. Used by ``--changed-since``."""
        text = self.source(path).text
        current = self.name_of(path)
        in_include = False
        for line in text.splitlines():
            if re.match(r"^include\s*:", line):
                in_include = True
                continue
            if in_include:
                match = _INCLUDE_ITEM_RE.match(line)
                if match:
                    name = match.group("value") or match.group("name")
                    if current is not None:
                        resolved, _ = self.resolve_include(name, current)
                        if resolved:
                            yield f"sls:{resolved}"
                    continue
                if line.strip() and not line.lstrip().startswith(("#", "{%", "{#")):
                    in_include = False
        for match in _JINJA_REF_RE.finditer(text):
            yield f"file:{match.group('path')}"

    def all_checked_files(self) -> Iterable[Path]:
        yield from self.sls.values()
        if self.top:
            yield self.top
        yield from self.templates
        yield from self.extension_python


def _outside_links(root: Path, repo: Path) -> list[Path]:
    """Symlinks under ``root`` whose target (even a missing one) is outside ``repo``. A directory link is
    reported once and not descended into (``rglob`` does not follow it)."""
    return sorted(
        p for p in root.rglob("*")
        if p.is_symlink() and not p.resolve().is_relative_to(repo) and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def root_clash_findings(tree: SourceTree) -> list[Finding]:
    """One finding per file that two roots of ``layout`` both hold (the release build refuses such a commit)."""
    return [
        Finding(
            LAYOUT_ROOT_CLASH, Severity.ERROR, tree.rel(path), 1,
            f"{tree.rel(first)} is at the same salt:// path in an earlier root: Salt would serve only that one and "
            "`release build` refuses the commit; rename one, or drop a root from layout.roots",
        )
        for path, first in tree.clashes
    ]


def _files(root: Path, skip: frozenset[str] = _SKIP_DIRS) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and not any(part in skip or part.startswith(".") for part in path.relative_to(root).parts[:-1]):
            yield path
