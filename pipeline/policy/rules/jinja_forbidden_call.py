"""Rule ``jinja-forbidden-call``."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pipeline.policy.rule import RuleContext
from pipeline.policy.functions import DISPATCHERS
from pipeline.policy.jinja import call_argument, salt_refs
from pipeline.policy.model import Hit, SlsDoc, TemplateDoc
from pipeline.policy.rules._template import TemplateRule

_TEXT_CALL_RES = (
    re.compile(r"""\bsalt\s*\[\s*['"](?P<fun>[\w.]+)['"]\s*\]"""),
    re.compile(r"""\bsalt\s*\.\s*(?P<mod>\w+)\s*\.\s*(?P<fn>\w+)"""),
)


def _message(function: str, why: str) -> str:
    return (
        f"salt[{function!r}] in Jinja runs {function} while the template renders (on the minion, as root), "
        f"which the policy forbids ({why}); read data with pillar.get/grains.get and act through states"
    )


class JinjaForbiddenCall(TemplateRule):
    """salt['cmd.*'] / salt.cmd.* (or state.single, ...) called from Jinja, including keys built at render time."""

    id = "jinja-forbidden-call"
    tags = ("security", "command-execution", "jinja")

    def match_jinja(self, doc: TemplateDoc, ctx: RuleContext) -> Iterable[Hit]:
        for ref in salt_refs(doc.jinja):
            if ref.kind == "function" and ref.function:
                why = ctx.functions.why(ref.function)
                if why:
                    yield Hit(ref.line, _message(ref.function, why), key=ref.function)
                elif ref.function in DISPATCHERS and ref.call is not None:
                    keyword, position = DISPATCHERS[ref.function]
                    _, inner = call_argument(ref.call, keyword, position)
                    why = ctx.functions.why(inner)
                    if inner and why:
                        yield Hit(ref.line, _message(f"{inner} (through {ref.function})", why), key=inner)
            elif ref.kind == "module" and ref.function:
                module = ref.function.split(".", 1)[0]
                if ctx.functions.forbidden_module(module):
                    yield Hit(
                        ref.line,
                        f"salt.{module} hands a module with forbidden functions to the template; the policy "
                        "forbids calling them from Jinja",
                        key=ref.function,
                    )

    def match_sls(self, doc: SlsDoc, ctx: RuleContext) -> Iterable[Hit]:
        # What Salt actually looked up while rendering: catches keys computed at render time.
        for call in doc.render_calls:
            why = ctx.functions.why(call.function)
            if why:
                yield Hit(call.line, _message(call.function, why), key=call.function, path=call.path)

    def match_text(self, doc: TemplateDoc, ctx: RuleContext) -> Iterable[Hit]:
        for line, match in doc.text_matches(*_TEXT_CALL_RES):
            groups = match.groupdict()
            function = groups.get("fun") or f"{groups['mod']}.{groups['fn']}"
            why = ctx.functions.why(function)
            if why:
                yield Hit(line, _message(function, why), key=function)
