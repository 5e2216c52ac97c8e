"""Rule ``py-dynamic-code``."""

from __future__ import annotations

import ast

from pipeline.policy.rules._pyast import PythonNodeRule, dotted

_BUILTINS = frozenset({"eval", "exec", "compile", "__import__", "execfile"})
_QUALIFIED = frozenset(
    {
        "builtins.eval",
        "builtins.exec",
        "builtins.compile",
        "builtins.__import__",
        "importlib.import_module",
        "importlib.__import__",
        "runpy.run_path",
        "runpy.run_module",
        "imp.load_source",
        "code.interact",
    }
)


class PyDynamicCode(PythonNodeRule):
    """Python running code built at run time: eval, exec, compile, __import__, importlib.import_module."""

    id = "py-dynamic-code"
    tags = ("security", "code-execution", "python")

    def what(self, node: ast.AST, aliases: dict[str, str]) -> str | None:
        if isinstance(node, ast.Name) and node.id in _BUILTINS and isinstance(node.ctx, ast.Load):
            return f"{node.id}()"
        if isinstance(node, ast.Attribute):
            full = dotted(node, aliases)
            return full if full in _QUALIFIED else None
        if isinstance(node, ast.ImportFrom) and node.module in {"builtins", "importlib", "runpy", "imp"}:
            bad = [a.name for a in node.names if f"{node.module}.{a.name}" in _QUALIFIED]
            return f"from {node.module} import {', '.join(bad)}" if bad else None
        return None

    def message(self, what: str) -> str:
        return (
            f"{what} runs code that is built at run time, so no review or policy check sees it: "
            "write the code out, and call Salt functions through __salt__ with literal names"
        )
