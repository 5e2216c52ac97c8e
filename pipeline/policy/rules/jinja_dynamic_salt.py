"""Rule ``jinja-dynamic-salt``."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pipeline.policy.rule import RuleContext
from pipeline.policy.functions import DISPATCHERS
from pipeline.policy.jinja import call_argument, possible_keys, salt_refs
from pipeline.policy.model import Hit, TemplateDoc
from pipeline.policy.rules._template import TemplateRule

_TEXT_DYNAMIC_RE = re.compile(r"""\bsalt\s*\[\s*[^'"\s\]]""")


class JinjaDynamicSalt(TemplateRule):
    """salt[...] with a key built at render time, or salt itself aliased, passed or filtered in Jinja."""

    id = "jinja-dynamic-salt"
    tags = ("security", "jinja")

    def match_jinja(self, doc: TemplateDoc, ctx: RuleContext) -> Iterable[Hit]:
        for ref in salt_refs(doc.jinja):
            if ref.kind == "dynamic":
                # template-formula's matcher: salt[parsed.query_method] over a dict of read-only lookups.
                keys = possible_keys(doc.jinja, ref.key)
                if keys and not any(ctx.functions.forbidden(k) for k in keys):
                    continue
                yield self._dynamic(ref.line)
            elif ref.kind == "alias":
                yield Hit(
                    ref.line,
                    "`salt` is stored in a variable, passed on or filtered: calls through the alias cannot be "
                    "reviewed or checked; call salt['module.function'] with a literal name where you need it",
                    key="alias",
                )
            elif ref.kind == "function" and ref.function in DISPATCHERS and ref.call is not None:
                keyword, position = DISPATCHERS[ref.function]
                present, inner = call_argument(ref.call, keyword, position)
                if present and inner is None:
                    yield Hit(
                        ref.line,
                        f"{ref.function} is given a function name computed at render time; use a literal name",
                        key=f"dispatch:{ref.function}",
                    )

    def match_text(self, doc: TemplateDoc, ctx: RuleContext) -> Iterable[Hit]:
        for line, _ in doc.text_matches(_TEXT_DYNAMIC_RE):
            yield self._dynamic(line)

    @staticmethod
    def _dynamic(line: int) -> Hit:
        return Hit(
            line,
            "salt[...] with a key computed at render time: nobody can review which function it calls "
            "(salt['cmd' ~ '.run'] is cmd.run); use a literal 'module.function' key",
            key="dynamic-key",
        )
