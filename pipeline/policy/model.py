"""What policy rules look at: source files, state declarations, render-time calls.

Rules never read files or render templates themselves. The lint stage (or ``saltpipe policy check``) builds
these documents once and hands them to every rule:

* :class:`SlsDoc` - one SLS file with the state declarations it produced, either from Salt's rendered high
  data (``origin="rendered"``) or, when rendering failed or was refused, from its template text
  (``origin="text"``);
* :class:`TemplateDoc` - the Jinja source of an SLS or of a ``.jinja``/``.j2`` template, for rules that read
  Jinja expressions (never the plain text around them);
* :class:`PythonDoc` - a Python file (``_modules/``, ``_states/``, a ``#!py`` SLS).

Lines are 1-based and point into the source the user edits, not into rendered output.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

Origin = Literal["rendered", "text"]

_KEY_LINE_RE = re.compile(
    r"""^(?P<indent>[ ]*)(?:"(?P<dq>[^"]+)"|'(?P<sq>[^']+)'|(?P<plain>[^\s#'"\-{][^#]*?|\{\{.*?))\s*:(?:\s|$)"""
)
_JINJA_EXPR_RE = re.compile(r"\{\{.*?\}\}")


@dataclass(frozen=True)
class SourceText:
    """The text of one file and where things are in it.

    ``path`` is the display path (relative to the repository when the file is inside it).
    """

    path: str
    text: str

    @cached_property
    def lines(self) -> tuple[str, ...]:
        return tuple(self.text.splitlines())

    @cached_property
    def _keys(self) -> tuple[tuple[int, int, str], ...]:
        """(line, indent, key text) of every line that looks like a YAML mapping key."""
        out = []
        for number, line in enumerate(self.lines, start=1):
            match = _KEY_LINE_RE.match(line)
            if match:
                key = match.group("dq") or match.group("sq") or match.group("plain") or ""
                out.append((number, len(match.group("indent")), key.strip()))
        return tuple(out)

    @cached_property
    def shebang(self) -> str | None:
        """The renderer shebang (``jinja|yaml`` for ``#!jinja|yaml``), or None (``#!/bin/...`` is no shebang)."""
        first = self.lines[0] if self.lines else ""
        if first.startswith("#!") and not first.startswith("#!/"):
            return first[2:].strip()
        return None

    def locate_key(self, key: str, *, after: int = 0) -> int | None:
        """The line of mapping key ``key`` (a state ID, an ``extend`` target) after line ``after``.

        Exact key text wins; otherwise a key written with Jinja expressions (``base-user-{{ user }}:``) that
        matches ``key`` once its expressions stand for any text. Outermost keys win over nested ones.
        """
        candidates = [k for k in self._keys if k[0] > after]
        exact = [k for k in candidates if k[2] == key]
        if exact:
            return min(exact, key=lambda k: (k[1], k[0]))[0]
        patterns = []
        for number, indent, text in candidates:
            if "{{" in text:
                parts = _JINJA_EXPR_RE.split(text)
                regex = ".+?".join(re.escape(p) for p in parts)
                if re.fullmatch(regex, key):
                    patterns.append((indent, number))
        if patterns:
            return min(patterns)[1]
        return None

    def locate_child_key(self, key: str, parent_line: int) -> int | None:
        """The line of ``key:`` (or ``- key:``) nested under the key on ``parent_line``, if written there."""
        if not 1 <= parent_line <= len(self.lines):
            return None
        parent = self.lines[parent_line - 1]
        parent_indent = len(parent) - len(parent.lstrip(" "))
        pattern = re.compile(rf"""^\s*(?:-\s+)?['"]?{re.escape(key)}['"]?\s*:(?:\s|$)""")
        for number in range(parent_line + 1, len(self.lines) + 1):
            line = self.lines[number - 1]
            stripped = line.strip()
            if not stripped or stripped.startswith(("{%", "{#", "#")):
                continue
            indent = len(line) - len(line.lstrip(" "))
            if indent <= parent_indent and not stripped.startswith("-"):
                return None
            if pattern.match(line):
                return number
        return None

    def find(self, needle: str, *, after: int = 0) -> int | None:
        """The first line after ``after`` that contains ``needle``."""
        for number in range(after + 1, len(self.lines) + 1):
            if needle in self.lines[number - 1]:
                return number
        return None

    def clamp(self, line: int | None) -> int:
        """``line`` if it is a line of this file, else 1 (findings always carry a valid line)."""
        if line is None or line < 1:
            return 1
        return min(line, max(len(self.lines), 1))


@dataclass(frozen=True)
class StateDecl:
    """One state function call declared in an SLS: ``<state_id>: {<module>.<function>: [args]}``.

    ``args`` merges the argument list's single-key mappings (``name``, ``onlyif``, ``require``...);
    ``positional`` holds its bare strings (the function, in the ``cmd: [run, ...]`` form). ``line`` is the
    line of the state ID in the source. ``in_extend`` marks declarations under ``extend:``.
    """

    path: str
    state_id: str
    module: str
    function: str | None
    args: Mapping[str, Any] = field(default_factory=dict, compare=False)
    positional: tuple[str, ...] = ()
    line: int = 1
    origin: Origin = "rendered"
    sls: str | None = None
    in_extend: bool = False
    source: SourceText | None = field(default=None, compare=False, repr=False)
    #: Lines of arguments known exactly (read from the text of a branch no render reached).
    arg_lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def fun(self) -> str:
        """``module.function`` (``module`` alone when no function is declared)."""
        return f"{self.module}.{self.function}" if self.function else self.module

    @property
    def name(self) -> Any:
        """The ``name`` argument, which defaults to the state ID."""
        return self.args.get("name", self.state_id)

    def line_of(self, key: str) -> int:
        """The line of argument ``key`` under this state's ID, else the ID's line."""
        if key in self.arg_lines:
            return self.arg_lines[key]
        if self.source is not None:
            found = self.source.locate_child_key(key, self.line)
            if found:
                return found
        return self.line


@dataclass(frozen=True)
class RenderCall:
    """A ``salt[...]`` lookup that happened while Salt rendered a template (keys built at render time
    included): the function, and the template file and line that asked for it."""

    function: str
    path: str
    line: int
    executed: bool


@dataclass(frozen=True)
class SlsDoc:
    """One SLS file as the policy sees it.

    ``renderers`` is the render pipe (from the shebang, else the default ``jinja|yaml``). ``states`` come from
    rendered high data when ``rendered`` is True, else from the template text. ``render_calls`` are the Salt
    function lookups seen while rendering (empty when not rendered).
    """

    source: SourceText
    sls: str | None
    renderers: tuple[str, ...]
    states: tuple[StateDecl, ...] = ()
    rendered: bool = False
    render_calls: tuple[RenderCall, ...] = ()
    context: str = ""

    @property
    def path(self) -> str:
        return self.source.path


@dataclass(frozen=True)
class TemplateDoc:
    """Jinja source: an SLS rendered with ``jinja`` or a template file (``.jinja``, ``.j2``...).

    :attr:`jinja` is the parsed Jinja AST, or None when the text does not parse (:attr:`syntax_error` says
    why); rules then fall back to :meth:`jinja_regions`.
    """

    source: SourceText

    @property
    def path(self) -> str:
        return self.source.path

    @cached_property
    def _parsed(self) -> tuple[Any, str | None]:
        from pipeline.policy.jinja import parse

        return parse(self.source.text)

    @property
    def jinja(self) -> Any:
        return self._parsed[0]

    @property
    def syntax_error(self) -> str | None:
        return self._parsed[1]

    def jinja_regions(self) -> Iterator[tuple[int, str]]:
        """``(line, text)`` of each ``{{ ... }}`` and ``{% ... %}`` in the source (comments left out)."""
        from pipeline.policy.jinja import regions

        return regions(self.source.text)

    def text_matches(self, *patterns: re.Pattern[str]) -> Iterator[tuple[int, re.Match[str]]]:
        """``(line, match)`` for each match of ``patterns`` in :meth:`jinja_regions`, region by region and in
        each region pattern by pattern: how rules read a template that does not parse."""
        for line, region in self.jinja_regions():
            for pattern in patterns:
                for match in pattern.finditer(region):
                    yield line + region.count("\n", 0, match.start()), match


@dataclass(frozen=True)
class PythonDoc:
    """A Python file: Salt extension modules (``_modules/``...), a ``#!py`` SLS, anything given to
    ``policy check``. :attr:`tree` is None when the file does not parse (:attr:`syntax_error` says where)."""

    source: SourceText
    first_line: int = 1

    @property
    def path(self) -> str:
        return self.source.path

    @cached_property
    def _parsed(self) -> tuple[ast.Module | None, str | None]:
        try:
            return ast.parse(self.source.text, filename=self.source.path), None
        except SyntaxError as exc:
            return None, f"line {exc.lineno}: {exc.msg}"

    @property
    def tree(self) -> ast.Module | None:
        return self._parsed[0]

    @property
    def syntax_error(self) -> str | None:
        return self._parsed[1]


@dataclass(frozen=True)
class Hit:
    """What a rule returns: a line, a message, and optionally the state ID and a stable key (see
    :class:`pipeline.findings.Finding`). The engine adds rule id, severity and path."""

    line: int
    message: str
    state_id: str | None = None
    key: str | None = None
    path: str | None = None  # another file than the document's (a template it imported)
