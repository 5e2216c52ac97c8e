"""Rule ``state-function-not-allowed``."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.policy.model import Hit, StateDecl
from pipeline.policy.rule import Rule, RuleContext
from pipeline.policy.rules._common import state_hit
from pipeline.policy.rules.scheduled_command import COMMAND_STATES


class StateFunctionNotAllowed(Rule):
    """A state function the allow-list denies: it runs a command or code chosen in the SLS (incron, ansible)."""

    id = "state-function-not-allowed"
    tags = ("security", "command-execution", "allow-list")

    def match_state(self, decl: StateDecl, ctx: RuleContext) -> Iterable[Hit]:
        # cmd.* and the cron/at commands have their own rules (and messages); everything else is judged here.
        if decl.function is None or decl.module == "cmd" or decl.fun in COMMAND_STATES:
            return
        why = ctx.functions.why(decl.fun, "state")
        if why is None or ctx.functions.unknown(decl.fun, "state"):
            # A state function that exists nowhere cannot run: lint's unknown-state-function reports it (once).
            return
        yield state_hit(
            decl,
            f"state {decl.fun} is not on the policy's allow-list ({why}); use a state that manages the "
            "resource, or a reviewed execution module (ops_*) through its state module",
        )
