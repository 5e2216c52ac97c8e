"""Rule ``py-dynamic-salt``."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from pipeline.policy.rule import Rule, RuleContext
from pipeline.policy.model import Hit, PythonDoc
from pipeline.policy.rules._pyast import SALT_DUNDERS, const_str, parents


class PyDynamicSalt(Rule):
    """Python __salt__ lookups with non-literal keys, and aliases of __salt__ (x = __salt__, getattr, globals)."""

    id = "py-dynamic-salt"
    tags = ("security", "python")

    def match_python(self, doc: PythonDoc, ctx: RuleContext) -> Iterable[Hit]:
        tree = doc.tree
        if tree is None:
            return
        up = parents(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in SALT_DUNDERS and isinstance(node.ctx, ast.Load):
                problem = self._use(node, up)
                if problem:
                    yield Hit(
                        node.lineno,
                        f"{node.id} {problem}: which function runs cannot be reviewed or checked; "
                        f"call {node.id}['module.function'] with a literal name",
                        key=f"{node.id}:{problem}",
                    )
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in SALT_DUNDERS:
                yield Hit(
                    node.lineno,
                    f"the string {node.value!r} reaches the loader dunder by name (globals(), getattr): an alias "
                    "nobody can review; use the dunder directly with literal keys",
                    key=f"string:{node.value}",
                )

    @staticmethod
    def _use(node: ast.Name, up: dict[ast.AST, ast.AST]) -> str | None:
        """What is wrong with this use of the dunder, or None when it is a plain literal lookup."""
        parent = up.get(node)
        if isinstance(parent, ast.Subscript) and parent.value is node:
            return None if const_str(parent.slice) is not None else "is indexed with a key computed at run time"
        if isinstance(parent, ast.Attribute) and parent.value is node:
            call = up.get(parent)
            if parent.attr == "get" and isinstance(call, ast.Call) and call.func is parent:
                return None if call.args and const_str(call.args[0]) is not None else "is read with .get() of a computed key"
            if parent.attr in {"items", "keys", "values", "__getitem__", "__getattr__"}:
                return f"is enumerated or indexed through .{parent.attr}"
            # __salt__.pkg.version: a literal module.function
            return None if isinstance(up.get(parent), ast.Attribute) else f"module {parent.attr!r} is taken out as an object"
        if isinstance(parent, ast.Compare) and node in parent.comparators and all(isinstance(op, (ast.In, ast.NotIn)) for op in parent.ops):
            return None  # "pkg.install" in __salt__: a capability check
        return "is aliased, passed on or iterated"
