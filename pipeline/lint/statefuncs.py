"""Which state functions exist: Salt's own state modules plus the repository's ``_states/``.

Read from the source text, not by loading the modules: whether Salt's loader offers ``service.running`` on
the CI host depends on the CI host (its ``__virtual__`` checks), while the question is whether the function
exists for the minions. Each module's name is its ``__virtualname__`` (or the literal names its
``__virtual__`` returns), else its file name; its functions are the public top-level ``def``s, renamed by
``__func_alias__``.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

_VIRTUALNAME_RE = re.compile(r"""^__virtualname__\s*=\s*['"](\w+)['"]""", re.MULTILINE)
_DEF_RE = re.compile(r"^(?:async\s+)?def\s+([A-Za-z]\w*)\s*\(", re.MULTILINE)
_ALIAS_RE = re.compile(r"^__func_alias__\s*=\s*\{(.*?)\}", re.MULTILINE | re.DOTALL)
_PAIR_RE = re.compile(r"""['"](\w+)['"]\s*:\s*['"](\w+)['"]""")
_VIRTUAL_RE = re.compile(r"^def __virtual__\(.*?(?=^\S)", re.MULTILINE | re.DOTALL)
_RETURN_NAME_RE = re.compile(r"""return\s+\(?\s*['"](\w+)['"]""")


@dataclass
class StateFunctionIndex:
    """``module -> {functions}``; :meth:`check` explains what is wrong with a ``module.function``."""

    modules: dict[str, set[str]] = field(default_factory=dict)

    def add_source(self, stem: str, text: str) -> None:
        # str.find before each regex: most modules have no alias table, and scanning 5 MB of Salt's
        # states with anchored regexes alone costs more than the rest of a one-file lint run.
        names = set(_VIRTUALNAME_RE.findall(text, max(0, text.find("__virtualname__") - 1))) if "__virtualname__" in text else set()
        start = text.find("\ndef __virtual__(")
        virtual = _VIRTUAL_RE.search(text, start + 1) if start >= 0 else None
        if virtual:
            names |= set(_RETURN_NAME_RE.findall(virtual.group(0)))
        if not names:
            names = {stem}
        functions = {f for f in _DEF_RE.findall(text) if not f.startswith("_")}
        start = text.find("\n__func_alias__")
        alias = _ALIAS_RE.search(text, start + 1) if start >= 0 else None
        if alias:
            for real, public in _PAIR_RE.findall(alias.group(1)):
                functions.discard(real)
                functions.add(public)
        for name in names:
            self.modules.setdefault(name, set()).update(functions)

    def add_python_file(self, path: Path) -> None:
        """A custom state module (``_states/x.py``), read with the AST so odd formatting cannot hide a function."""
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            self.add_source(path.stem, text)
            return
        names: set[str] = set()
        functions: set[str] = set()
        aliases: dict[str, str] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__virtualname__" for t in node.targets):
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    names.add(node.value.value)
            elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__func_alias__" for t in node.targets):
                if isinstance(node.value, ast.Dict):
                    for k, v in zip(node.value.keys, node.value.values):
                        if isinstance(k, ast.Constant) and isinstance(v, ast.Constant):
                            aliases[str(k.value)] = str(v.value)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                functions.add(node.name)
        functions = {aliases.get(f, f) for f in functions} | {v for k, v in aliases.items() if k in functions}
        for name in names or {path.stem}:
            self.modules.setdefault(name, set()).update(functions)

    def check(self, module: str, function: str | None) -> str | None:
        """None when ``module.function`` exists; otherwise what is wrong, with a suggestion when there is one."""
        if module not in self.modules:
            close = difflib.get_close_matches(module, list(self.modules), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return f"there is no state module {module!r} in Salt or in _states/{hint}"
        if function is None:
            return None
        if function not in self.modules[module]:
            close = difflib.get_close_matches(function, sorted(self.modules[module]), n=1)
            hint = f" (did you mean {module}.{close[0]}?)" if close else ""
            return f"state module {module!r} has no function {function!r}{hint}"
        return None


@cache
def _salt_states() -> tuple[tuple[str, str], ...]:
    import salt.states

    root = Path(salt.states.__file__).parent
    return tuple((p.stem, p.read_text(encoding="utf-8", errors="replace")) for p in sorted(root.glob("*.py")) if p.stem != "__init__")


def build_index(custom_state_files: Iterable[Path] = ()) -> StateFunctionIndex:
    """Salt's state modules (read once per process) plus the given custom ``_states`` files."""
    index = StateFunctionIndex()
    for stem, text in _salt_states():
        index.add_source(stem, text)
    for path in custom_state_files:
        index.add_python_file(path)
    return index
