"""Rule ``orchestrate-forbidden``."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.policy.rule import Rule, RuleContext
from pipeline.policy.inventory import Kind
from pipeline.policy.model import Hit, StateDecl
from pipeline.policy.rules._common import forbidden_calls, split_args


class OrchestrateForbidden(Rule):
    """Orchestration salt.function / salt.runner running a forbidden function (cmd.*, state.single, ...)."""

    id = "orchestrate-forbidden"
    tags = ("security", "command-execution", "orchestration")

    def match_state(self, decl: StateDecl, ctx: RuleContext) -> Iterable[Hit]:
        if decl.module != "salt" or decl.function not in {"function", "runner", "wheel"}:
            return
        function = decl.args.get("fun") or decl.name
        positional, keywords = split_args(decl.args.get("arg"))
        keywords.update(decl.args.get("kwarg") or {} if isinstance(decl.args.get("kwarg"), dict) else {})
        # salt.runner passes its other arguments to the runner as keywords (fun=..., arg=[...]).
        keywords.update({k: v for k, v in decl.args.items() if k not in {"name", "arg", "kwarg"}})
        if decl.function == "runner" and "arg" in keywords and not positional:
            positional, _ = split_args(keywords["arg"])
        kind: Kind = "runner" if decl.function == "runner" else "wheel" if decl.function == "wheel" else "execution"
        for bad, why in forbidden_calls(function, positional, keywords, ctx.functions, kind):
            key = "fun" if "fun" in decl.args else "name"
            yield Hit(
                line=decl.line_of(key),
                message=(
                    f"{decl.fun} runs {bad}, which the policy forbids ({why}): orchestrate with "
                    "salt.state and reviewed SLS, or a reviewed execution module"
                ),
                state_id=decl.state_id,
                key=bad,
            )
