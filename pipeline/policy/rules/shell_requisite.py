"""Rule ``shell-requisite``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pipeline.policy.rule import Rule, RuleContext
from pipeline.policy.model import Hit, StateDecl
from pipeline.policy.rules._common import forbidden_calls, short, split_args

_SHELL_ARGS = ("onlyif", "unless", "check_cmd")


class ShellRequisite(Rule):
    """Shell strings in onlyif, unless or check_cmd (or their fun: form calling a forbidden function)."""

    id = "shell-requisite"
    tags = ("security", "command-execution")

    def match_state(self, decl: StateDecl, ctx: RuleContext) -> Iterable[Hit]:
        for arg in _SHELL_ARGS:
            if arg not in decl.args:
                continue
            value = decl.args[arg]
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str):
                    yield Hit(
                        line=decl.line_of(arg),
                        message=(
                            f"{arg} runs the shell command {short(item)!r}: shell strings are cmd.* in disguise; "
                            f"use the function form ({arg}: [{{fun: file.file_exists, ...}}]) with a Salt function"
                        ),
                        state_id=decl.state_id,
                        key=f"{arg}:{item}",
                    )
                elif isinstance(item, Mapping) and "fun" in item:
                    rest = {k: v for k, v in item.items() if k not in {"fun", "args"}}
                    positional, _ = split_args(item.get("args"))
                    for bad, why in forbidden_calls(item["fun"], positional, rest, ctx.functions):
                        yield Hit(
                            line=decl.line_of(arg),
                            message=f"{arg} calls {bad}, which the policy forbids ({why})",
                            state_id=decl.state_id,
                            key=f"{arg}:{bad}",
                        )
