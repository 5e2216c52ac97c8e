"""Rule ``py-dynamic-code``."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from pipeline.policy.rule import Rule, RuleContext
from pipeline.policy.model import Hit, PythonDoc
from pipeline.policy.rules._pyast import dotted, nodes_and_aliases

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


class PyDynamicCode(Rule):
    """Python running code built at run time: eval, exec, compile, __import__, importlib.import_module."""

    id = "py-dynamic-code"
    tags = ("security", "code-execution", "python")

    def match_python(self, doc: PythonDoc, ctx: RuleContext) -> Iterable[Hit]:
        nodes, aliases = nodes_and_aliases(doc.tree)
        for node in nodes:
            what = None
            if isinstance(node, ast.Name) and node.id in _BUILTINS and isinstance(node.ctx, ast.Load):
                what = f"{node.id}()"
            elif isinstance(node, ast.Attribute):
                full = dotted(node, aliases)
                if full in _QUALIFIED:
                    what = full
            elif isinstance(node, ast.ImportFrom) and node.module in {"builtins", "importlib", "runpy", "imp"}:
                bad = [a.name for a in node.names if f"{node.module}.{a.name}" in _QUALIFIED]
                what = f"from {node.module} import {', '.join(bad)}" if bad else None
            if what:
                yield Hit(
                    node.lineno,
                    f"{what} runs code that is built at run time, so no review or policy check sees it: "
                    "write the code out, and call Salt functions through __salt__ with literal names",
                    key=what,
                )
