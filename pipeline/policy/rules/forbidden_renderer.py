"""Rule ``forbidden-renderer``."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.policy.rule import Rule, RuleContext
from pipeline.policy.model import Hit, SlsDoc, StateDecl

#: Salt 3006 state functions whose ``template`` argument is not a renderer (a database, directory, stack or
#: VM template), found by reading every state function with a ``template`` parameter. Every other state's
#: ``template`` is judged as a render engine (custom states included: fail closed).
TEMPLATE_NOT_RENDERER = frozenset(
    {
        "postgres_database.present",  # the database to copy (template0, template1)
        "git.present",  # the directory git init --template copies
        "heat.deployed",  # the Heat orchestration template
        "lxc.present",  # the LXC template the container is created from
        "esxvm.vm_configured",  # the VM template
        "azurearm_resource.policy_definition_present",  # a policy definition document
    }
)


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
        if not isinstance(template, str) or not template or decl.fun in TEMPLATE_NOT_RENDERER:
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
