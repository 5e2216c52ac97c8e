"""Which Jinja branches the fixture renders reached, and the coverage summary of a lint run.

Lint renders every SLS for every fixture minion; a branch (``{% if %}``/``{% elif %}``/``{% else %}``, a
``{% for %}`` body or its ``{% else %}``, a ``{% macro %}`` or ``{% call %}`` body) that no minion takes never
shows in rendered data. To know which, :class:`BranchTracker` instruments each template's source before Jinja
compiles it: right after the tag that opens a branch it inserts ``{% do saltpipe_reached(N) %}`` - on the same
line (line numbers unchanged) and with the opening tag's whitespace control (output unchanged). The markers a
*successful* render fired are what it covered. Lint then checks the text of every branch no render reached
(:func:`pipeline.policy.states.states_in_spans`) and lists those branches in the report's coverage.

A template whose branches cannot be mapped (it does not parse, or the tag scan and Jinja's parser disagree) is
not instrumented: :meth:`BranchTracker.unreached` returns None for it and lint reads its whole text instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from jinja2 import nodes

from pipeline.policy.jinja import parse, walk

MARKER = "saltpipe_reached"

_STRING = r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\""""
_TOKEN_RE = re.compile(
    r"\{#.*?#\}"
    rf"|\{{\{{(?:{_STRING}|[^'\"}}]|\}}(?!\}}))*\}}\}}"
    rf"|\{{%(?P<lead>[-+]?)\s*(?P<name>\w+)(?:{_STRING}|[^'\"%]|%(?!\}}))*?(?P<trail>[-+]?)%\}}",
    re.DOTALL,
)
_RAW_END_RE = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")
_OPENERS = {"if": "if", "for": "for", "macro": "macro", "call": "call"}
_NODE_KINDS = {"if": nodes.If, "for": nodes.For, "macro": nodes.Macro, "call": nodes.CallBlock}


@dataclass(frozen=True)
class Branch:
    """One branch body: from just after its opening tag (``offset``, line ``start_line`` column ``start_col``)
    to the start of the next clause or end tag (``end_line``, ``end_col``). ``parent`` is the enclosing branch."""

    index: int
    kind: str
    offset: int
    start_line: int
    start_col: int
    end_line: int
    end_col: int
    trail: str = ""
    parent: int | None = None
    end: int = 0

    @property
    def lines(self) -> str:
        return f"{self.start_line}-{self.end_line}" if self.end_line != self.start_line else str(self.start_line)


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1)


def find_branches(text: str) -> tuple[Branch, ...] | None:
    """Every branch of the Jinja template ``text``, in source order; None when they cannot be mapped."""
    tree, _ = parse(text)
    if tree is None:
        return None
    found: list[Branch] = []
    stack: list[tuple[str, int]] = []  # (opener, index of the open branch)
    counts = dict.fromkeys(_NODE_KINDS, 0)
    pos = 0
    while True:
        match = _TOKEN_RE.search(text, pos)
        if match is None:
            break
        pos = match.end()
        name = match.group("name")
        if name is None:
            continue
        if name == "raw":
            end = _RAW_END_RE.search(text, pos)
            pos = end.end() if end else len(text)
            continue

        def open_branch(kind: str, opener: str) -> None:
            parent = stack[-1][1] if stack else None
            line, col = _position(text, match.end())
            found.append(Branch(len(found), kind, match.end(), line, col, line, col, match.group("trail"), parent, match.end()))
            stack.append((opener, len(found) - 1))

        def close_branch() -> str | None:
            if not stack:
                return None
            opener, index = stack.pop()
            line, col = _position(text, match.start())
            branch = found[index]
            found[index] = replace(branch, end_line=line, end_col=col, end=match.start())
            return opener

        if name in _OPENERS:
            if name == "if" or name == "elif":
                counts["if"] += 1
            else:
                counts[name] += 1
            open_branch(name, name)
        elif name in ("elif", "else"):
            if not stack or stack[-1][0] not in ("if", "for"):
                return None
            opener = close_branch() or ""
            if name == "elif":
                counts["if"] += 1
            open_branch(name if opener == "if" else "for-else", opener)
        elif name.startswith("end") and name[3:] in _OPENERS:
            if close_branch() != name[3:]:
                return None
    if stack:
        return None
    # The tag scan must agree with Jinja's own parser, else the markers could land in the wrong place.
    for kind, cls in _NODE_KINDS.items():
        if sum(1 for node, _ in walk(tree) if type(node) is cls) != counts[kind]:
            return None
    return tuple(found)


def instrument(text: str, branches: Iterable[Branch], first_id: int) -> str:
    """``text`` with a marker statement after each branch's opening tag (marker ``first_id + index``)."""
    out = []
    last = 0
    for branch in branches:
        out.append(text[last : branch.offset])
        out.append(f"{{% do {MARKER}({first_id + branch.index}) {branch.trail}%}}")
        last = branch.offset
    out.append(text[last:])
    return "".join(out)


@dataclass
class _File:
    path: str
    branches: tuple[Branch, ...] | None
    first_id: int


@dataclass
class BranchTracker:
    """The instrumented templates of one lint run and the branches successful renders reached.

    :meth:`register` each template's text (as Salt reads it) before rendering; call :meth:`start` before each
    render and :meth:`keep` after a successful one.
    """

    _files: dict[str, _File] = field(default_factory=dict)
    _by_text: dict[str, tuple[_File, str]] = field(default_factory=dict)
    _next: int = 0
    _current: set[int] = field(default_factory=set)
    _seen_now: set[str] = field(default_factory=set)
    reached: set[int] = field(default_factory=set)
    #: Templates a successful render compiled (an SLS, or a ``.jinja`` it imported).
    seen: set[str] = field(default_factory=set)

    def register(self, path: str, text: str) -> None:
        if path in self._files:
            return
        branches = find_branches(text)
        entry = _File(path, branches, self._next)
        self._files[path] = entry
        if branches is None:
            return
        self._next += len(branches)
        self._by_text.setdefault(text, (entry, instrument(text, branches, entry.first_id)))

    def instrument(self, environment: Any, source: str) -> str:
        """The instrumented source for a registered template (``source`` itself otherwise); called by Jinja's
        compile while lint renders, with the environment that will run it."""
        hit = self._by_text.get(source)
        if hit is None:
            return source
        entry, instrumented = hit
        environment.globals[MARKER] = self._reach
        self._seen_now.add(entry.path)
        return instrumented

    def _reach(self, marker: int) -> None:
        self._current.add(marker)

    def start(self) -> None:
        self._current = set()
        self._seen_now = set()

    def keep(self) -> None:
        self.reached |= self._current
        self.seen |= self._seen_now

    def mapped(self, path: str) -> bool:
        entry = self._files.get(path)
        return entry is not None and entry.branches is not None

    def unreached(self, path: str) -> list[Branch] | None:
        """The outermost branches of ``path`` no kept render reached (None: the file could not be mapped)."""
        entry = self._files.get(path)
        if entry is None or entry.branches is None:
            return None
        missed = {b.index for b in entry.branches if entry.first_id + b.index not in self.reached}
        return [b for b in entry.branches if b.index in missed and (b.parent is None or b.parent not in missed)]
