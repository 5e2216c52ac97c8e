"""Every function Salt ships, read from its source: execution, state, runner and wheel modules.

Read from the source, not by loading the modules: Salt's loader offers only what each module's ``__virtual__``
accepts on the host that loads it (about a third of the execution modules on a CI container), while the policy
must know every function a minion could run. The names follow the loader's rules: a module's name is its
``__virtualname__`` or the literal names its ``__virtual__`` returns, else its file name; its functions are its
public top-level ``def``s, renamed by ``__func_alias__``. The same reader serves the repository's own
``_modules``/``_states``/``_runners`` (:func:`custom_functions`).

``python -m pipeline.policy.inventory`` regenerates the classification data (docs/policy.md).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

Kind = Literal["execution", "state", "runner", "wheel"]
KINDS: tuple[Kind, ...] = ("execution", "state", "runner", "wheel")
#: Salt's package directory of each kind, and the repository directory of custom modules of that kind.
SALT_PACKAGES: dict[Kind, str] = {"execution": "salt.modules", "state": "salt.states", "runner": "salt.runners", "wheel": "salt.wheel"}
CUSTOM_DIRS: dict[Kind, str] = {"execution": "_modules", "state": "_states", "runner": "_runners", "wheel": "_wheel"}


@dataclass(frozen=True)
class SaltFunction:
    """One function as the loader names it (``module.function``), with its parameters and where it is."""

    kind: Kind
    module: str
    function: str
    params: tuple[str, ...]
    file: str

    @property
    def name(self) -> str:
        return f"{self.module}.{self.function}"


def _literal_returns(fn: ast.FunctionDef) -> set[str]:
    out = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            out.add(node.value.value)
    return out


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def read_module(kind: Kind, path: Path, text: str | None = None) -> list[SaltFunction]:
    """The functions one module file offers under the loader's names (empty when it does not parse)."""
    text = path.read_text(encoding="utf-8", errors="replace") if text is None else text
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    names: set[str] = set()
    aliases: dict[str, str] = {}
    functions: dict[str, tuple[str, ...]] = {}
    virtual: ast.FunctionDef | None = None
    assigned: list[tuple[str, str]] = []  # `pillar_refresh = refresh_pillar`: the loader offers both names
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = {t.id for t in node.targets if isinstance(t, ast.Name)}
            source = node.value
            if isinstance(source, ast.Call) and _callee(source).endswith("alias_function") and source.args:
                source = source.args[0]  # salt.utils.functools.alias_function(list_tab, "ls")
            if isinstance(source, ast.Name):
                assigned += [(target, source.id) for target in targets if not target.startswith("_")]
            if "__virtualname__" in targets and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                names.add(node.value.value)
            elif "__func_alias__" in targets and isinstance(node.value, ast.Dict):
                for key, value in zip(node.value.keys, node.value.values):
                    if isinstance(key, ast.Constant) and isinstance(value, ast.Constant):
                        aliases[str(key.value)] = str(value.value)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name == "__virtual__" and isinstance(node, ast.FunctionDef):
                virtual = node
            else:
                args = node.args
                params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
                params += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
                functions[node.name] = tuple(params)
    for target, source in assigned:
        if source in functions:
            functions.setdefault(target, functions[source])
    for node in ast.walk(tree):  # setattr(sys.modules[__name__], "call", ...): ansible.call
        if (
            isinstance(node, ast.Call)
            and _callee(node) == "setattr"
            and len(node.args) == 3
            and "sys.modules" in ast.unparse(node.args[0])
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            functions.setdefault(node.args[1].value, ("kwargs",))
    if virtual is not None:
        names |= _literal_returns(virtual)
    if not names:
        names = {path.stem}
    out = []
    for name in sorted(names):
        for real, params in sorted(functions.items()):
            public = aliases.get(real, real)
            if public.startswith("_") or real == "__virtual__":
                continue
            out.append(SaltFunction(kind, name, public, params, path.name))
    return out


@cache
def salt_functions(kind: Kind) -> tuple[SaltFunction, ...]:
    """Every function of ``kind`` in the installed Salt, sorted by name (read once per process)."""
    import importlib

    package = importlib.import_module(SALT_PACKAGES[kind])
    root = Path(package.__file__ or "").parent
    out: dict[str, SaltFunction] = {}
    for path in sorted(root.glob("*.py")):
        if path.stem == "__init__":
            continue
        for fn in read_module(kind, path):
            out.setdefault(fn.name, fn)
    return tuple(out[k] for k in sorted(out))


def custom_functions(files: Iterable[Path]) -> Mapping[Kind, frozenset[str]]:
    """``module.function`` names that the repository's extension modules define, by kind: each ``.py`` file
    under a ``_modules``/``_states``/``_runners``/``_wheel`` directory (wherever the layout puts it)."""
    by_dir = {d: k for k, d in CUSTOM_DIRS.items()}
    out: dict[Kind, set[str]] = {k: set() for k in KINDS}
    for path in files:
        kind = by_dir.get(path.parent.name)
        if kind is not None and path.suffix == ".py" and path.is_file():
            out[kind].update(fn.name for fn in read_module(kind, path))
    return {k: frozenset(v) for k, v in out.items()}


def by_module(functions: Iterable[SaltFunction]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for fn in functions:
        out.setdefault(fn.module, []).append(fn.function)
    return {m: sorted(set(f)) for m, f in sorted(out.items())}


# --- classification: the reviewed rules of data/classification.yaml applied to every function -------------

DATA_DIR = Path(__file__).parent / "data"
RULES_FILE = DATA_DIR / "classification.yaml"
CLASSES = ("allowed", "lookup", "dispatcher", "denied-executes-process", "denied-loads-code")
REVIEWED = "reviewed-allowed"
UNCLASSIFIED = "unclassified"


def data_file(version: str) -> Path:
    """``data/salt-<major>.functions.yaml``: the classification of one Salt release line."""
    return DATA_DIR / f"salt-{version.split('.')[0]}.functions.yaml"


def _matches(group: Mapping[str, Any], fn: SaltFunction) -> bool:
    import fnmatch

    if group.get("kinds") and fn.kind not in group["kinds"]:
        return False
    return (
        any(fnmatch.fnmatchcase(fn.name, p) for p in group.get("functions", ()))
        or fn.module in group.get("modules", ())
        or any(fnmatch.fnmatchcase(fn.function, p) for p in group.get("names", ()))
        or bool(set(group.get("params", ())) & set(fn.params))
    )


def classify(rules: Mapping[str, Any], previous: Mapping[str, Any] | None, version: str, *, baseline: bool = False) -> dict[str, Any]:
    """The data file's content: every function of every kind under the first group of ``rules`` that matches
    it; else under the group it had in ``previous`` (reviewed then) if that was an allowed one; else, for the
    first classification of a release line (``baseline``), under ``reviewed-allowed``; else ``unclassified``."""
    groups = list(rules["groups"])
    before: dict[tuple[str, str], str] = {}
    for gid, body in (previous or {}).get("groups", {}).items():
        for kind in KINDS:
            for module, names in (body.get(kind) or {}).items():
                for name in names:
                    before[(kind, f"{module}.{name}")] = gid
    out_groups: dict[str, Any] = {
        g["id"]: {"class": g["class"], "reason": g["reason"], **{k: {} for k in KINDS}} for g in groups
    }
    out_groups[REVIEWED] = {
        "class": "allowed",
        "reason": (
            "matches no group above: none of its parameters or its name says it runs a command or code; "
            f"reviewed as a group when Salt {version} was classified"
        ),
        **{k: {} for k in KINDS},
    }
    unclassified: dict[str, Any] = {k: {} for k in KINDS}
    for kind in KINDS:
        for fn in salt_functions(kind):
            gid = next((g["id"] for g in groups if _matches(g, fn)), None)
            if gid is None:
                old = before.get((kind, fn.name))
                gid = REVIEWED if old == REVIEWED or baseline else None
            target = out_groups[gid][kind] if gid else unclassified[kind]
            target.setdefault(fn.module, []).append(fn.function)
    return {"salt_version": version, "groups": out_groups, UNCLASSIFIED: unclassified}


_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def _scalar(name: str) -> str:
    """``name`` as a YAML scalar that reads back as the same string (``off`` would be False)."""
    import json

    return json.dumps(name) if name.lower() in _YAML_WORDS else name


def render_data(data: Mapping[str, Any]) -> str:
    """The data file's text: one flow list per module, so a review diff shows one line per module."""
    import json

    lines = [
        "# GENERATED by `python -m pipeline.policy.inventory --write` from classification.yaml and the installed",
        "# Salt: do not edit by hand (a unit test compares it with a fresh classification). docs/policy.md",
        f"salt_version: {json.dumps(data['salt_version'])}",
        "groups:",
    ]

    def kinds(body: Mapping[str, Any], indent: str) -> None:
        for kind in KINDS:
            modules = body.get(kind) or {}
            if not modules:
                lines.append(f"{indent}{kind}: {{}}")
                continue
            lines.append(f"{indent}{kind}:")
            for module in sorted(modules):
                lines.append(f"{indent}  {_scalar(module)}: [{', '.join(_scalar(n) for n in sorted(modules[module]))}]")

    for gid, body in data["groups"].items():
        lines.append(f"  {gid}:")
        lines.append(f"    class: {body['class']}")
        lines.append(f"    reason: {json.dumps(body['reason'])}")
        kinds(body, "    ")
    lines.append(f"{UNCLASSIFIED}:")
    kinds(data[UNCLASSIFIED], "  ")
    return "\n".join(lines) + "\n"


def load_yaml(path: Path) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipeline.policy.inventory [--write] [--baseline]``: classify the installed Salt's functions.

    Prints what is unclassified (exit 1 when anything is); ``--write`` writes the data file."""
    import argparse

    import salt.version

    parser = argparse.ArgumentParser(prog="python -m pipeline.policy.inventory", description=main.__doc__)
    parser.add_argument("--write", action="store_true", help="write data/salt-<major>.functions.yaml")
    parser.add_argument("--baseline", action="store_true", help="first classification of a release line: what no group matches is reviewed-allowed")
    args = parser.parse_args(argv)
    version = salt.version.__version__
    target = data_file(version)
    previous = load_yaml(target) if target.is_file() else None
    data = classify(load_yaml(RULES_FILE), previous, version, baseline=args.baseline)
    counts = {gid: sum(len(v) for k in KINDS for v in (body[k] or {}).values()) for gid, body in data["groups"].items()}
    missing = [f"{kind} {m}.{f}" for kind in KINDS for m, fs in data[UNCLASSIFIED][kind].items() for f in fs]
    for gid, n in counts.items():
        print(f"{gid:36} {data['groups'][gid]['class']:24} {n}")
    for name in missing:
        print(f"unclassified: {name}")
    if args.write:
        target.write_text(render_data(data), encoding="utf-8")
        print(f"wrote {target}")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
