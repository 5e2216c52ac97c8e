"""Rule ``no-cmd-module``."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.policy.rule import Rule, RuleContext
from pipeline.policy.model import Hit, StateDecl
from pipeline.policy.rules._common import state_hit


class NoCmdModule(Rule):
    """cmd.* used as a state (cmd.run, cmd.script, cmd.wait, cmd.shell, ...): cmd.* is disabled."""

    id = "no-cmd-module"
    tags = ("security", "command-execution")

    def match_state(self, decl: StateDecl, ctx: RuleContext) -> Iterable[Hit]:
        if decl.module != "cmd":
            return
        yield state_hit(
            decl,
            f"state {decl.fun} runs shell commands and cmd.* is disabled: use a Salt state, or a reviewed "
            "execution module (ops_*) through its state module",
        )
