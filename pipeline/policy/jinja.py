"""Reading Jinja as code: parse it like Salt does, walk the AST, find every use of ``salt``.

Policy rules that look at templates only ever look at Jinja *expressions* - what is inside ``{{ }}`` and
``{% %}`` - so a managed file whose text merely mentions ``cmd.run`` or ``__class__`` is not a finding.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2
from jinja2 import nodes

_COMMENT_RE = re.compile(r"\{#.*?#\}", re.DOTALL)
_REGION_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


@cache
def _environment() -> jinja2.Environment:
    """A Jinja environment with the extensions Salt's renderer loads, so Salt's tags parse."""
    extensions: list[Any] = ["jinja2.ext.do", "jinja2.ext.loopcontrols"]
    try:  # Salt's {% load_yaml %}, {% import_yaml %}... tags
        from salt.utils.jinja import SerializerExtension

        extensions.append(SerializerExtension)
    except ImportError:  # pragma: no cover - salt is a dependency
        pass
    return jinja2.Environment(extensions=extensions)


def parse(text: str) -> tuple[nodes.Template | None, str | None]:
    """The Jinja AST of ``text``, or ``(None, "line N: why")`` when it does not parse."""
    try:
        return _environment().parse(text), None
    except jinja2.TemplateSyntaxError as exc:
        return None, f"line {exc.lineno}: {exc.message}"


def regions(text: str) -> Iterator[tuple[int, str]]:
    """``(line, text)`` of every ``{{ }}`` / ``{% %}`` region, comments removed (for text fallbacks)."""
    # Blank comments out but keep their newlines so line numbers stay right.
    text = _COMMENT_RE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for match in _REGION_RE.finditer(text):
        yield text.count("\n", 0, match.start()) + 1, match.group(0)


def walk(node: nodes.Node, ancestors: tuple[nodes.Node, ...] = ()) -> Iterator[tuple[nodes.Node, tuple[nodes.Node, ...]]]:
    """Every node below ``node`` (itself included) with its ancestors, innermost last."""
    yield node, ancestors
    inner = ancestors + (node,)
    for child in node.iter_child_nodes():
        yield from walk(child, inner)


def const_str(node: nodes.Node | None) -> str | None:
    """The value of a string constant node, else None."""
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        return node.value
    return None


@dataclass(frozen=True)
class SaltRef:
    """One use of the template variable ``salt``.

    ``kind``: ``"function"`` - a literal function (``salt['pkg.version']``, ``salt.pkg.version``,
    ``salt.get('pkg.version')``), ``function`` names it; ``"dynamic"`` - a key computed at render time
    (``salt['cmd' ~ '.run']``); ``"module"`` - a module object taken out of ``salt`` (``salt.cmd``) and used
    on its own, ``function`` is ``"cmd.*"``; ``"alias"`` - ``salt`` itself stored, passed or filtered
    (``{% set s = salt %}``, ``salt|attr(...)``). ``call`` is the enclosing call node when the reference is
    called directly.
    """

    kind: str
    function: str | None
    line: int
    call: nodes.Call | None = None
    key: nodes.Node | None = None  # the computed key of a "dynamic" reference


def salt_refs(tree: nodes.Template) -> Iterator[SaltRef]:
    """Every use of ``salt`` in ``tree``."""
    for node, ancestors in walk(tree):
        if not (isinstance(node, nodes.Name) and node.name == "salt" and node.ctx == "load"):
            continue
        parent = ancestors[-1] if ancestors else None
        grand = ancestors[-2] if len(ancestors) > 1 else None
        great = ancestors[-3] if len(ancestors) > 2 else None
        line = node.lineno
        if isinstance(parent, nodes.Getitem) and parent.node is node:
            key = const_str(parent.arg)
            if key is None:
                yield SaltRef("dynamic", None, line, _call_of(parent, grand), parent.arg)
            else:
                yield SaltRef("function", key, line, _call_of(parent, grand))
        elif isinstance(parent, nodes.Getattr) and parent.node is node:
            if parent.attr == "get" and isinstance(grand, nodes.Call) and grand.node is parent:
                key = const_str(grand.args[0]) if grand.args else None
                if key is None:
                    yield SaltRef("dynamic", None, line, _call_of(grand, great), grand.args[0] if grand.args else None)
                else:
                    yield SaltRef("function", key, line, _call_of(grand, great))
            elif isinstance(grand, nodes.Getattr) and grand.node is parent:
                yield SaltRef("function", f"{parent.attr}.{grand.attr}", line, _call_of(grand, great))
            else:
                yield SaltRef("module", f"{parent.attr}.*", line)
        elif isinstance(parent, nodes.Operand) and parent.op in ("in", "notin"):
            continue  # 'pkg.version' in salt: a capability check, nothing is called
        else:
            yield SaltRef("alias", None, line)


def _call_of(ref: nodes.Node, parent: nodes.Node | None) -> nodes.Call | None:
    if isinstance(parent, nodes.Call) and parent.node is ref:
        return parent
    return None


def call_argument(call: nodes.Call, keyword: str | None, position: int | None) -> tuple[bool, str | None]:
    """Argument ``keyword`` (or the ``position``-th positional one) of ``call``: ``(present, literal value)``."""
    if keyword:
        for kw in call.kwargs:
            if kw.key == keyword:
                return True, const_str(kw.value)
    if position is not None and position < len(call.args):
        return True, const_str(call.args[position])
    return False, None


def possible_keys(tree: nodes.Template, key: nodes.Node | None) -> frozenset[str] | None:
    """Every value a computed ``salt[...]`` key can take, when the template itself bounds it; else None.

    The key is a variable, attribute or item (``fn``, ``parsed.query_method``, ``parsed['query_method']``)
    and every place in the template that sets that name (``{% set fn = ... %}``, a dict literal's
    ``'query_method': ...``, a keyword ``query_method=...``, a ``{% for fn in [...] %}``) gives a string
    literal, a lookup in a dict literal of string literals (``query_map[...]``) or a choice between those.
    That is template-formula's matcher (``salt[parsed.query_method]`` over ``query_map``); anything else
    (``'cmd' ~ '.run'``, a value from pillar) is unbounded.
    """
    if isinstance(key, nodes.Name):
        slot = key.name
    elif isinstance(key, nodes.Getattr):
        slot = key.attr
    elif isinstance(key, nodes.Getitem) and const_str(key.arg) is not None:
        slot = const_str(key.arg)
    else:
        return None
    values: list[nodes.Node] = []
    loops: list[nodes.Node] = []
    dicts: dict[str, list[nodes.Node]] = {}
    for node, _ in walk(tree):
        if isinstance(node, nodes.Assign) and isinstance(node.target, nodes.Name):
            dicts.setdefault(node.target.name, []).append(node.node)
            if node.target.name == slot:
                values.append(node.node)
        elif isinstance(node, nodes.Pair) and const_str(node.key) == slot:
            values.append(node.value)
        elif isinstance(node, nodes.Keyword) and node.key == slot:
            values.append(node.value)
        elif isinstance(node, nodes.For) and isinstance(node.target, nodes.Name) and node.target.name == slot:
            loops.append(node.iter)
    if not values and not loops:
        return None
    out: set[str] = set()
    for expr in values:
        found = _bounded(expr, dicts)
        if found is None:
            return None
        out |= found
    for items in loops:
        if not isinstance(items, (nodes.List, nodes.Tuple)) or any(const_str(i) is None for i in items.items):
            return None
        out |= {const_str(i) or "" for i in items.items}
    return frozenset(out)


def _bounded(expr: nodes.Node, dicts: dict[str, list[nodes.Node]]) -> set[str] | None:
    if const_str(expr) is not None:
        return {const_str(expr) or ""}
    if isinstance(expr, nodes.CondExpr) and expr.expr2 is not None:
        left, right = _bounded(expr.expr1, dicts), _bounded(expr.expr2, dicts)
        return None if left is None or right is None else left | right
    if isinstance(expr, nodes.Getitem) and isinstance(expr.node, nodes.Name):
        assigned = dicts.get(expr.node.name) or []
        out: set[str] = set()
        for value in assigned:
            if not isinstance(value, nodes.Dict) or any(const_str(p.value) is None for p in value.items):
                return None
            out |= {const_str(p.value) or "" for p in value.items}
        return out or None
    return None
