"""Rule ``py-forbidden-function``."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from pipeline.policy.rule import Rule, RuleContext
from pipeline.policy.functions import DISPATCHERS
from pipeline.policy.inventory import Kind
from pipeline.policy.model import Hit, PythonDoc
from pipeline.policy.rules._pyast import SALT_DUNDERS, const_str, parents, salt_function_refs


class PyForbiddenFunction(Rule):
    """Python calling a forbidden Salt function: __salt__['cmd.*'], __salt__.cmd.run, __states__['cmd.run']."""

    id = "py-forbidden-function"
    tags = ("security", "command-execution", "python")

    def match_python(self, doc: PythonDoc, ctx: RuleContext) -> Iterable[Hit]:
        tree = doc.tree
        if tree is None:
            return
        up = parents(tree)
        for node, dunder, function in salt_function_refs(tree):
            kind: Kind = "state" if dunder == "__states__" else "execution"
            why = ctx.functions.why(function, kind)
            if why:
                yield self._hit(node, dunder, function, why)
                continue
            spec = DISPATCHERS.get(function)
            call = up.get(node)
            if spec and isinstance(call, ast.Call) and call.func is node:
                keyword, position = spec
                inner = next((const_str(k.value) for k in call.keywords if k.arg == keyword), None)
                if inner is None and position < len(call.args):
                    inner = const_str(call.args[position])
                why = ctx.functions.why(inner)
                if inner and why:
                    yield self._hit(node, dunder, f"{inner} (through {function})", why)
        for node in ast.walk(tree):
            # __salt__.cmd on its own: a module object with forbidden functions.
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in SALT_DUNDERS
                and node.attr != "get"
                and ctx.functions.forbidden_module(node.attr)
                and not isinstance(up.get(node), ast.Attribute)
            ):
                yield self._hit(node, node.value.id, f"{node.attr}.*", "the module has forbidden functions")

    @staticmethod
    def _hit(node: ast.AST, dunder: str, function: str, why: str) -> Hit:
        return Hit(
            line=getattr(node, "lineno", 1),
            message=(
                f"{dunder}[{function!r}] calls a function the policy forbids ({why}): use Salt's "
                "own execution modules (file.*, pkg.*, service.*, http.query, ...)"
            ),
            key=function,
        )
