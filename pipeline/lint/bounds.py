"""Bounds on every render lint does: input size, YAML alias expansion, and time per file.

An SLS in a merge request is untrusted input to the CI host. Three bounds keep one file from stopping the run
(each is a ``render-limit`` finding on that file; the run goes on with the others):

* **size**: a file larger than :attr:`RenderLimits.max_bytes` is not rendered at all;
* **YAML alias expansion**: before Salt's ``yaml`` renderer reads a render's text, the YAML is composed (node
  graph only, aliases shared) and its size *as expanded* is counted, memoised per node, so a "billion laughs"
  document is refused in milliseconds instead of being walked for minutes by Salt's ``_validate_data``. Only
  text with both an anchor and an alias pays for this;
* **time**: each render runs under a ``SIGALRM`` interval timer (:func:`time_limit`). When it fires,
  :class:`RenderTimeout` - a ``BaseException``, so Salt's ``except Exception`` wrappers cannot turn it into an
  ordinary render error - unwinds the render, and the finding names the template line that was running.

Why a timer and not a worker process: the render loaders are built once per run and switched per minion in
place (see :mod:`pipeline.lint.render`); a process per render would rebuild or copy them and cost more than the
renders themselves. Everything a render executes is Python code (Jinja's compiled templates, PyYAML's pure
Python loader that Salt subclasses, Salt's renderers), which the signal interrupts between bytecodes. What it
cannot interrupt is one single C call that never returns to the interpreter (say, a multi-gigabyte string
multiplication in a Jinja expression); the size and alias bounds cover the known shapes of that. The timer needs
the main thread (signals are delivered there); elsewhere renders run without it and lint says so in a note.
"""

from __future__ import annotations

import contextlib
import io
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

RENDER_LIMIT = "render-limit"
#: Renderers that read YAML text (Salt's ``yaml`` and ``yamlex``): their input is checked for alias expansion.
YAML_RENDERERS = frozenset({"yaml", "yamlex"})


@dataclass(frozen=True)
class RenderLimits:
    """Per-file bounds (see the module docstring). ``timeout`` in seconds; 0 disables a bound."""

    max_bytes: int = 1024 * 1024
    max_yaml_nodes: int = 1_000_000
    timeout: float = 10.0


class RenderLimitExceeded(BaseException):
    """A render went past a bound; ``line`` is where, when known. A BaseException for the same reason as
    :class:`RenderTimeout`: the YAML of an ``import_yaml`` inside Jinja must not become a plain render error."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class RenderTimeout(BaseException):
    """Raised into a render by the :func:`time_limit` timer (a BaseException: see the module docstring)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[bool]:
    """Raise :class:`RenderTimeout` in the block after ``seconds``; yields whether the timer is armed (False in
    a thread other than the main one, or with ``seconds`` 0)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield False
        return

    def fire(signum: int, frame: Any) -> None:  # pylint: disable=unused-argument
        raise RenderTimeout()

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def template_line(tb: TracebackType | None) -> int | None:
    """The innermost Jinja template line in a traceback (Jinja's debug info maps Python lines back)."""
    line = None
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if template is not None:
            try:
                line = template.get_corresponding_lineno(tb.tb_lineno)
            except Exception:  # pylint: disable=broad-except  # debug info is best effort
                pass
        tb = tb.tb_next
    return line


def yaml_expansion(text: str, limit: int) -> tuple[int, int | None] | None:
    """``(nodes, line)`` when the YAML in ``text`` expands to more than ``limit`` nodes (``line`` of the alias
    that crossed it), else None. Text without an anchor and an alias, or that does not parse, is left to the
    renderer (its own error message is better)."""
    if limit <= 0 or "&" not in text or "*" not in text:
        return None
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if root is None:
        return None
    sizes: dict[int, int] = {}
    worst: list[Any] = [None]

    def size(node: Any) -> int:
        known = sizes.get(id(node))
        if known is not None:
            if worst[0] is None and known > limit:
                worst[0] = node
            return known
        sizes[id(node)] = 1  # a recursive alias counts once
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in node.value)
        else:
            total = 1
        sizes[id(node)] = total
        return total

    try:
        total = size(root)
    except RecursionError:  # nesting deeper than Python's stack: left to the renderer, which reports it
        return None
    if total <= limit:
        return None
    node = worst[0] or root
    return total, node.start_mark.line + 1 if node.start_mark else None


class BoundedRenderers(Mapping[str, Any]):
    """Salt's renderer loader for :func:`salt.template.compile_template`, with the YAML renderers wrapped to
    check alias expansion first (:class:`RenderLimitExceeded`)."""

    def __init__(self, real: Any, limits: RenderLimits) -> None:
        self._real = real
        self._limits = limits

    def __getitem__(self, name: str) -> Any:
        func = self._real[name]
        if name not in YAML_RENDERERS or self._limits.max_yaml_nodes <= 0:
            return func
        limit = self._limits.max_yaml_nodes

        def bounded(data: Any, *args: Any, **kwargs: Any) -> Any:
            text = data.getvalue() if isinstance(data, io.StringIO) else data if isinstance(data, str) else None
            found = yaml_expansion(text, limit) if text is not None else None
            if found is not None:
                nodes, line = found
                raise RenderLimitExceeded(
                    f"YAML aliases expand to {nodes:,} nodes (limit {limit:,}): a 'billion laughs' document is not "
                    "rendered; use fewer nested aliases (or Jinja loops) to build this data",
                    line,
                )
            return func(data, *args, **kwargs)

        return bounded

    def __contains__(self, name: object) -> bool:
        return name in self._real

    def __iter__(self) -> Iterator[str]:
        return iter(self._real)

    def __len__(self) -> int:
        return len(self._real)
