"""The ``salt`` that templates see while lint renders them.

Rendering an MR's SLS with the real ``__salt__`` would run whatever the MR asks for on the CI host
(``salt['cmd.run']('...')`` at render time). The guard hands out real functions only for the read-only
allow-list of the policy (``render_functions``: ``pillar.get``, ``grains.get``...). Every other lookup -
forbidden or just not allowed - returns a stub that returns an empty :class:`Placeholder`, and is recorded as a
:class:`~pipeline.policy.model.RenderCall` with the template file and line that asked, so the policy sees
the function even when its name was built at render time (``salt['cmd' ~ '.run']``).
"""

from __future__ import annotations

import fnmatch
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pipeline.policy.model import RenderCall


class Placeholder(str):
    """What a stubbed function returns: an empty string that also answers the dict methods templates use,
    and compares with a number as 0 would (``salt['pkg.version_cmp'](...) >= 0`` must render, not raise)."""

    def _number(self, other: Any) -> Any:
        return 0 if isinstance(other, (int, float)) and not isinstance(other, bool) else None

    def __lt__(self, other: Any) -> bool:
        return 0 < other if self._number(other) is not None else str.__lt__(self, other)

    def __le__(self, other: Any) -> bool:
        return 0 <= other if self._number(other) is not None else str.__le__(self, other)

    def __gt__(self, other: Any) -> bool:
        return 0 > other if self._number(other) is not None else str.__gt__(self, other)

    def __ge__(self, other: Any) -> bool:
        return 0 >= other if self._number(other) is not None else str.__ge__(self, other)

    def __eq__(self, other: Any) -> bool:
        return other == 0 if self._number(other) is not None else str.__eq__(self, other)

    def __ne__(self, other: Any) -> bool:
        return not self.__eq__(other)

    __hash__ = str.__hash__

    def __int__(self) -> int:
        return 0

    def __float__(self) -> float:
        return 0.0

    def items(self) -> list[Any]:
        return []

    def keys(self) -> list[Any]:
        return []

    def values(self) -> list[Any]:
        return []

    def get(self, key: Any, default: Any = None) -> Any:  # pylint: disable=unused-argument
        return default


PLACEHOLDER = Placeholder("")


def _stub(*args: Any, **kwargs: Any) -> Placeholder:  # pylint: disable=unused-argument
    return PLACEHOLDER


class _ModuleView:
    """``salt.pkg`` in a template: attribute access goes back through the guard (``salt.pkg.version``)."""

    def __init__(self, guard: GuardedFunctions, module: str) -> None:
        self._guard = guard
        self._module = module

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._guard[f"{self._module}.{name}"]


class GuardedFunctions(Mapping[str, Any]):
    """A read-only view of the execution modules for templates (see the module docstring).

    ``current`` is the display path of the file being rendered (set by the renderer before each render);
    ``display`` maps a file_roots-relative template name to its display path.
    """

    def __init__(self, real: Any, allowed: tuple[str, ...], display: Callable[[str], str]) -> None:
        self._real = real
        self._allowed = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in allowed) or "(?!)")
        self._display = display
        self.current = ""
        self.calls: list[RenderCall] = []

    def allowed(self, name: str) -> bool:
        return bool(self._allowed.match(name))

    def __getitem__(self, name: str) -> Any:
        path, line = self._caller()
        executed = isinstance(name, str) and self.allowed(name)
        self.calls.append(RenderCall(function=str(name), path=path, line=line, executed=executed))
        if executed:
            return self._real[name]
        return _stub

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return _ModuleView(self, name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.allowed(name) and name in self._real

    # Templates must not enumerate the loader (that is an alias by another name).
    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def _caller(self) -> tuple[str, int]:
        """The template file and line that is looking a function up, from Jinja's debug info."""
        frame = sys._getframe(2)  # pylint: disable=protected-access
        while frame is not None:
            template = frame.f_globals.get("__jinja_template__")
            if template is not None:
                try:
                    line = template.get_corresponding_lineno(frame.f_lineno)
                except Exception:  # pylint: disable=broad-except  # debug info is best effort
                    line = 1
                path = self.current if template.name is None else self._display(template.name)
                return path, max(1, line)
            frame = frame.f_back
        return self.current, 1

