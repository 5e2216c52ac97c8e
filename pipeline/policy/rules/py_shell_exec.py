"""Rule ``py-shell-exec``."""

from __future__ import annotations

import ast

from pipeline.policy.rules._pyast import PythonNodeRule, const_str, dotted

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


def _from_import(module: str, names: list[str]) -> str | None:
    """What ``from module import names`` brings in that runs processes, or None."""
    if _process_module(module):
        return f"from {module} import ..."
    if module in {"os", "posix", "nt"} and any(_os_runner(n) for n in names):
        return f"from {module} import {', '.join(n for n in names if _os_runner(n))}"
    if module == "asyncio" and _ASYNCIO_FUNCTIONS & set(names):
        return "asyncio subprocess functions"
    if any(_process_module(f"{module}.{n}") for n in names):
        return f"from {module} import {', '.join(n for n in names if _process_module(f'{module}.{n}'))}"
    return None


def _namespace_of_module(node: ast.AST, aliases: dict[str, str]) -> bool:
    """``sys.modules``, ``os.__dict__``, ``vars(os)``: mappings from names to modules or their functions."""
    if isinstance(node, ast.Attribute) and (dotted(node, aliases) == "sys.modules" or node.attr == "__dict__"):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "vars"


class PyShellExec(PythonNodeRule):
    """Python running processes: subprocess, os.system, os.popen, os.exec*, os.spawn*, pty, cmdmod."""

    id = "py-shell-exec"
    tags = ("security", "command-execution", "python")

    def what(self, node: ast.AST, aliases: dict[str, str]) -> str | None:
        if isinstance(node, ast.Import):
            bad = [a.name for a in node.names if _process_module(a.name)]
            return f"import {', '.join(bad)}" if bad else None
        if isinstance(node, ast.ImportFrom) and node.module:
            return _from_import(node.module, [a.name for a in node.names])
        if isinstance(node, ast.Attribute):
            full = dotted(node, aliases)
            if full:
                module, _, attr = full.rpartition(".")
                if (module in {"os", "posix", "nt"} and _os_runner(attr)) or (
                    module == "asyncio" and attr in _ASYNCIO_FUNCTIONS
                ):
                    return full
            return None
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and _os_runner(const_str(node.args[1]) or "")
        ):
            return f"getattr(..., {const_str(node.args[1])!r})"
        if isinstance(node, ast.Subscript) and _namespace_of_module(node.value, aliases):
            key = const_str(node.slice) or ""
            if _os_runner(key) or _process_module(key) or key in {"os", "posix", "nt"}:
                return f"{ast.unparse(node)}"
        return None

    def message(self, what: str) -> str:
        return (
            f"{what} runs processes outside Salt (cmd.* is disabled, and so is every way around it): use Salt's "
            "execution modules through __salt__ with a literal name"
        )
