"""Rule ``scheduled-command``."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from pipeline.policy.rule import Rule, RuleContext
from pipeline.policy.model import Hit, StateDecl
from pipeline.policy.rules._common import forbidden_calls, short, split_args

COMMAND_STATES = {
    "cron.present": "installs a crontab line that runs an arbitrary shell command",
    "cron.file": "installs a whole crontab of arbitrary shell commands",
    "at.present": "queues an arbitrary shell command with at",
    "at.watch": "queues an arbitrary shell command with at",
}
_FILE_FUNCTIONS = {"managed", "append", "prepend", "line", "replace", "blockreplace", "symlink", "copy", "rename", "serialize", "keyvalue"}
# Where a file becomes a scheduled command (the path may carry a sandbox prefix, hence the leading *).
_SCHEDULER_PATHS = (
    "*/etc/crontab",
    "*/etc/cron.d/*",
    "*/etc/cron.hourly/*",
    "*/etc/cron.daily/*",
    "*/etc/cron.weekly/*",
    "*/etc/cron.monthly/*",
    "*/etc/anacrontab",
    "*/var/spool/cron/*",
    "*/var/spool/at/*",
    "*/systemd/system/*.timer",
)


class ScheduledCommand(Rule):
    """cron.present, cron.file, at.present, schedule.present (or a cron/at/timer file) running commands."""

    id = "scheduled-command"
    tags = ("security", "command-execution")

    def match_state(self, decl: StateDecl, ctx: RuleContext) -> Iterable[Hit]:
        what = COMMAND_STATES.get(decl.fun)
        if what:
            yield Hit(
                line=decl.line,
                message=f"{decl.fun} {what} ({short(decl.name)!r}): scheduled commands are cmd.* later; "
                "schedule a reviewed Salt function with schedule.present instead",
                state_id=decl.state_id,
                key=decl.fun,
            )
        elif decl.fun == "schedule.present":
            function = decl.args.get("function")
            positional, keywords = split_args(decl.args.get("job_args"))
            keywords.update(decl.args.get("job_kwargs") or {} if isinstance(decl.args.get("job_kwargs"), dict) else {})
            for bad, why in forbidden_calls(function, positional, keywords, ctx.functions):
                yield Hit(
                    line=decl.line_of("function"),
                    message=f"schedule.present runs {bad}, which the policy forbids ({why}), on a schedule",
                    state_id=decl.state_id,
                    key=f"schedule:{bad}",
                )
        elif decl.module == "file" and decl.function in _FILE_FUNCTIONS:
            names = decl.args.get("names") or [decl.name]
            for name in names if isinstance(names, list) else [names]:
                path = next(iter(name)) if isinstance(name, dict) and name else name
                if isinstance(path, str) and any(fnmatch.fnmatchcase("/" + path.lstrip("/"), p) for p in _SCHEDULER_PATHS):
                    yield Hit(
                        line=decl.line,
                        message=(
                            f"{decl.fun} writes {path}, which the system scheduler runs as commands: scheduled "
                            "commands are cmd.* later; use schedule.present with a reviewed Salt function"
                        ),
                        state_id=decl.state_id,
                        key=f"{decl.fun}:{path}",
                    )
