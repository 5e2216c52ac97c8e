"""Rule ``forbidden-renderer``."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.policy.rule import Rule, RuleContext
from pipeline.policy.model import Hit, SlsDoc, StateDecl


class ForbiddenRenderer(Rule):
    """SLS renderers (#!py, #!pyobjects, #!mako, ...) or file templates the policy does not allow."""

    id = "forbidden-renderer"
    tags = ("security", "code-execution")

    def match_sls(self, doc: SlsDoc, ctx: RuleContext) -> Iterable[Hit]:
        allowed = ctx.policy.renderers
        for name in doc.renderers:
            if name not in allowed:
                yield Hit(
                    line=1,
                    message=(
                        f"renderer {name!r} is not allowed by the policy (allowed: {', '.join(allowed)}): "
                        "it runs arbitrary code where no state policy can see it; write the SLS in "
                        f"{'|'.join(allowed)}"
                    ),
                    key=name,
                )

    def match_state(self, decl: StateDecl, ctx: RuleContext) -> Iterable[Hit]:
        template = decl.args.get("template")
        if not isinstance(template, str) or not template:
            return
        engine = template.split("|")[0].strip()
        if engine not in ctx.policy.templates:
            yield Hit(
                line=decl.line_of("template"),
                message=(
                    f"template engine {template!r} is not allowed by the policy (allowed: "
                    f"{', '.join(ctx.policy.templates)}): it runs code on the minion when the file is rendered"
                ),
                state_id=decl.state_id,
                key=f"template:{template}",
            )
