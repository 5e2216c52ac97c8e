"""Rule ``py-shell-exec``."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from pipeline.policy.rule import Rule, RuleContext
from pipeline.policy.model import Hit, PythonDoc
from pipeline.policy.rules._pyast import const_str, dotted, nodes_and_aliases

#: Modules whose only purpose is running processes.
PROCESS_MODULES = frozenset(
    {
        "subprocess",
        "pty",
        "commands",
        "popen2",
        "pexpect",
        "sh",
        "plumbum",
        "asyncio.subprocess",
        "salt.modules.cmdmod",
        "salt.utils.timed_subprocess",
        "salt.utils.vt",
        "salt.utils.nb_popen",
    }
)
_OS_PREFIXES = ("exec", "spawn", "posix_spawn")
_OS_FUNCTIONS = frozenset({"system", "popen", "popen2", "popen3", "popen4", "fork", "forkpty"})
_ASYNCIO_FUNCTIONS = frozenset({"create_subprocess_exec", "create_subprocess_shell"})


def _os_runner(name: str) -> bool:
    return name in _OS_FUNCTIONS or name.startswith(_OS_PREFIXES)


def _process_module(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in PROCESS_MODULES)


def _namespace_of_module(node: ast.AST, aliases: dict[str, str]) -> bool:
    """``sys.modules``, ``os.__dict__``, ``vars(os)``: mappings from names to modules or their functions."""
    if isinstance(node, ast.Attribute) and (dotted(node, aliases) == "sys.modules" or node.attr == "__dict__"):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "vars"


def _message(what: str) -> str:
    return (
        f"{what} runs processes outside Salt (cmd.* is disabled, and so is every way around it): use Salt's "
        "execution modules through __salt__ with a literal name"
    )


class PyShellExec(Rule):
    """Python running processes: subprocess, os.system, os.popen, os.exec*, os.spawn*, pty, cmdmod."""

    id = "py-shell-exec"
    tags = ("security", "command-execution", "python")

    def match_python(self, doc: PythonDoc, ctx: RuleContext) -> Iterable[Hit]:
        nodes, aliases = nodes_and_aliases(doc.tree)
        for node in nodes:
            what = None
            if isinstance(node, ast.Import):
                bad = [a.name for a in node.names if _process_module(a.name)]
                what = f"import {', '.join(bad)}" if bad else None
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [a.name for a in node.names]
                if _process_module(node.module):
                    what = f"from {node.module} import ..."
                elif node.module in {"os", "posix", "nt"} and any(_os_runner(n) for n in names):
                    what = f"from {node.module} import {', '.join(n for n in names if _os_runner(n))}"
                elif node.module == "asyncio" and _ASYNCIO_FUNCTIONS & set(names):
                    what = "asyncio subprocess functions"
                elif any(_process_module(f"{node.module}.{n}") for n in names):
                    what = f"from {node.module} import {', '.join(n for n in names if _process_module(f'{node.module}.{n}'))}"
            elif isinstance(node, ast.Attribute):
                full = dotted(node, aliases)
                if full:
                    module, _, attr = full.rpartition(".")
                    if module in {"os", "posix", "nt"} and _os_runner(attr):
                        what = full
                    elif module == "asyncio" and attr in _ASYNCIO_FUNCTIONS:
                        what = full
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "getattr"
                and len(node.args) >= 2
                and _os_runner(const_str(node.args[1]) or "")
            ):
                what = f"getattr(..., {const_str(node.args[1])!r})"
            elif isinstance(node, ast.Subscript) and _namespace_of_module(node.value, aliases):
                key = const_str(node.slice) or ""
                if _os_runner(key) or _process_module(key) or key in {"os", "posix", "nt"}:
                    what = f"{ast.unparse(node)}"
            if what:
                yield Hit(node.lineno, _message(what), key=what)
