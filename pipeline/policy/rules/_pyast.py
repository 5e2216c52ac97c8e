"""Python AST helpers for the ``py-*`` rules, and :class:`PythonNodeRule`, the base of those that judge one
node at a time."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator

from pipeline.policy.model import Hit, PythonDoc
from pipeline.policy.rule import Rule, RuleContext

#: Loader dunders through which a Salt module calls other Salt functions.
SALT_DUNDERS = frozenset({"__salt__", "__states__"})


def parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    """Child node -> parent node for the whole tree."""
    out: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            out[child] = node
    return out


def const_str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def module_aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> module for every ``import x`` / ``import x as y`` / ``import x.y`` in the file."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = alias.name
                else:
                    top = alias.name.split(".", 1)[0]
                    out[top] = top
    return out


def nodes_and_aliases(tree: ast.AST | None) -> tuple[Iterable[ast.AST], dict[str, str]]:
    """Every node of the module ``tree`` and its import aliases (:func:`module_aliases`); nothing for a file
    that does not parse (None)."""
    if tree is None:
        return (), {}
    return ast.walk(tree), module_aliases(tree)


def dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """``os.path.join`` for an attribute chain on an imported module name, resolving import aliases."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in aliases:
        return ".".join([aliases[node.id], *reversed(parts)])
    return None


def salt_function_refs(tree: ast.AST) -> Iterator[tuple[ast.AST, str, str]]:
    """``(node, dunder, function)`` for each literal function lookup on a loader dunder:
    ``__salt__['pkg.version']``, ``__salt__.get('pkg.version')``, ``__salt__.pkg.version``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in SALT_DUNDERS:
            key = const_str(node.slice)
            if key is not None:
                yield node, node.value.id, key
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in SALT_DUNDERS
            and node.args
            and const_str(node.args[0]) is not None
        ):
            yield node, node.func.value.id, const_str(node.args[0]) or ""
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id in SALT_DUNDERS
            and node.value.attr != "get"
        ):
            yield node, node.value.value.id, f"{node.value.attr}.{node.attr}"


class PythonNodeRule(Rule):
    """A ``py-*`` rule that judges each node of the module on its own: :meth:`what` names what is wrong at a
    node (None: nothing), :meth:`message` words the finding. Each finding is at the node's line and keyed by
    the name :meth:`what` gave."""

    def what(self, node: ast.AST, aliases: dict[str, str]) -> str | None:
        """What is wrong at ``node`` (``aliases``: the module's import aliases), or None."""
        raise NotImplementedError

    def message(self, what: str) -> str:
        """The finding's message for ``what``."""
        raise NotImplementedError

    def match_python(self, doc: PythonDoc, ctx: RuleContext) -> Iterable[Hit]:
        nodes, aliases = nodes_and_aliases(doc.tree)
        for node in nodes:
            what = self.what(node, aliases)
            if what:
                yield Hit(node.lineno, self.message(what), key=what)  # type: ignore[attr-defined]
