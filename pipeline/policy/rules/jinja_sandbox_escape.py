"""Rule ``jinja-sandbox-escape``."""

from __future__ import annotations

import re
from collections.abc import Iterable

from jinja2 import nodes

from pipeline.policy.rule import RuleContext
from pipeline.policy.jinja import const_str, walk
from pipeline.policy.model import Hit, TemplateDoc
from pipeline.policy.rules._template import TemplateRule

#: Attributes that lead from any object to Python internals (frames, globals, classes).
UNSAFE_ATTRIBUTES = frozenset(
    {
        "mro",
        "func_globals",
        "func_code",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "ag_code",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "tb_frame",
        "im_func",
        "im_self",
        "co_code",
    }
)
_TEXT_RE = re.compile(r"\b__\w+__\b|\|\s*attr\b|\.\s*mro\b|\b(?:" + "|".join(sorted(UNSAFE_ATTRIBUTES)) + r")\b")


def _message(what: str) -> str:
    return (
        f"{what} reaches Python internals from a template (a sandbox escape: from there any code runs on the "
        "minion); templates only need data"
    )


class JinjaSandboxEscape(TemplateRule):
    """Jinja sandbox escapes: __class__, __mro__, __subclasses__, __globals__, |attr, ... in expressions."""

    id = "jinja-sandbox-escape"
    tags = ("security", "jinja")

    def match_jinja(self, doc: TemplateDoc, ctx: RuleContext) -> Iterable[Hit]:
        for node, _ in walk(doc.jinja):
            what = None
            if isinstance(node, nodes.Getattr) and (node.attr.startswith("_") or node.attr in UNSAFE_ATTRIBUTES):
                what = f"attribute {node.attr!r}"
            elif isinstance(node, nodes.Getitem) and (const_str(node.arg) or "").startswith("_"):
                what = f"item {const_str(node.arg)!r}"
            elif isinstance(node, nodes.Filter) and node.name == "attr":
                what = "the attr filter"
            elif isinstance(node, nodes.Name) and node.name.startswith("__"):
                what = f"name {node.name!r}"
            elif (
                isinstance(node, nodes.Call)
                and isinstance(node.node, nodes.Getattr)
                and node.node.attr in {"format", "format_map"}
                and "__" in (const_str(node.node.node) or "")
            ):
                what = "a format string with dunder fields"
            if what:
                yield Hit(node.lineno, _message(what), key=what)

    def match_text(self, doc: TemplateDoc, ctx: RuleContext) -> Iterable[Hit]:
        for line, match in doc.text_matches(_TEXT_RE):
            yield Hit(line, _message(repr(match.group(0))), key=match.group(0))
