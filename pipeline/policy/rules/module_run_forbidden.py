"""Rule ``module-run-forbidden``."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.policy.rule import Rule, RuleContext
from pipeline.policy.model import Hit, StateDecl
from pipeline.policy.rules._common import forbidden_calls, split_args

_MODULE_FUNCTIONS = frozenset({"run", "wait", "mod_watch"})
# Old-syntax arguments of module.run that carry the called function's arguments.
_OLD_POSITIONAL = ("m_args", "args")
_OLD_KEYWORDS = ("m_kwargs", "kwargs")


class ModuleRunForbidden(Rule):
    """module.run / module.wait calling a forbidden function (cmd.*, state.single, ...), old or new syntax."""

    id = "module-run-forbidden"
    tags = ("security", "command-execution")

    def match_state(self, decl: StateDecl, ctx: RuleContext) -> Iterable[Hit]:
        if decl.module != "module" or decl.function not in _MODULE_FUNCTIONS:
            return
        # New syntax (module.run: [{cmd.run: [args]}]): every argument named like a function is a call.
        for key, value in decl.args.items():
            if "." in key:
                positional, keywords = split_args(value)
                for bad, why in forbidden_calls(key, positional, keywords, ctx.functions):
                    yield self._hit(decl, bad, why, decl.line_of(key))
        # Old syntax (module.run: [name: cmd.run, ...]); name defaults to the state ID.
        name = decl.name
        if isinstance(name, str) and "." in name and name not in decl.args:
            positional: list[object] = []
            keywords: dict[str, object] = {}
            for key in _OLD_POSITIONAL:
                extra, _ = split_args(decl.args.get(key))
                positional += extra
            for key in _OLD_KEYWORDS:
                _, extra_kw = split_args(decl.args.get(key))
                keywords.update(extra_kw)
            keywords.update({k: v for k, v in decl.args.items() if k not in {"name", *_OLD_POSITIONAL, *_OLD_KEYWORDS}})
            for bad, why in forbidden_calls(name, positional, keywords, ctx.functions):
                yield self._hit(decl, bad, why, decl.line_of("name") if "name" in decl.args else decl.line)

    def _hit(self, decl: StateDecl, bad: str, why: str, line: int) -> Hit:
        return Hit(
            line=line,
            message=(
                f"{decl.fun} calls {bad}, which the policy forbids ({why}): module.run must not reach cmd.* or functions "
                "that run arbitrary state data; write a state or a reviewed execution module instead"
            ),
            state_id=decl.state_id,
            key=bad,
        )
