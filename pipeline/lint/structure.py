"""Structure checks on rendered SLS: top file, includes, cycles, duplicate IDs, state functions, requisites.

All checks work on what Salt rendered for one fixture minion (:class:`MinionRender`), because Jinja decides
includes, IDs and requisites per minion. A *run* is what one ``state.apply`` would compile: an SLS and
everything it includes (its closure), or a minion's highstate (the closure of its top file matches). A
duplicate ID is an error when both declarations meet in some run; a requisite dangles when its target is in
no run that contains the requiring SLS.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.findings import Finding, RuleCatalog, Severity
from pipeline.lint.fixtures import MinionFixture
from pipeline.lint.render import RenderOutcome
from pipeline.lint.sources import SourceTree
from pipeline.lint.statefuncs import StateFunctionIndex
from pipeline.policy.model import StateDecl
from pipeline.policy.states import RESERVED_KEYS, state_body

#: Lint's own finding ids (besides the policy rules) with their meaning; docs/lint.md lists them.
LINT_RULES = RuleCatalog()
SLS_RENDER_ERROR = LINT_RULES.add(
    "sls-render-error", "an SLS or top.sls does not render (Jinja or YAML error) for a fixture minion"
)
SLS_STRUCTURE = LINT_RULES.add(
    "sls-structure",
    "rendered data is not valid state data (an ID that is not a mapping, two functions of one module...)",
)
TOP_MISSING_SLS = LINT_RULES.add("top-missing-sls", "top.sls names an SLS that does not exist")
INCLUDE_MISSING = LINT_RULES.add("include-missing", "an include names an SLS that does not exist")
INCLUDE_CYCLE = LINT_RULES.add("include-cycle", "SLS files include each other in a cycle")
DUPLICATE_STATE_ID = LINT_RULES.add(
    "duplicate-state-id", "the same state ID is declared in two SLS files that meet in one run"
)
UNKNOWN_STATE_FUNCTION = LINT_RULES.add(
    "unknown-state-function", "a state module or function that neither Salt nor _states/ provides"
)
DANGLING_REQUISITE = LINT_RULES.add(
    "dangling-requisite", "a requisite names a state that is in no run with the requiring SLS"
)
LINT_RULES.add(
    "render-stubbed-call", "a template called a Salt function that lint does not run (not in render_functions)"
)
LINT_RULES.add("python-syntax-error", "a Python file (or #!py SLS) does not parse, so the policy cannot read it")
LINT_RULES.add(
    "render-limit", "a render went past a bound (file size, YAML alias expansion, time per file) and was stopped"
)
LINT_RULES.add("top-match-error", "a top.sls target Salt cannot match (unknown match: type, unreadable target)")
LINT_RULES.add("symlink-outside-repo", "a file in the checked tree is a symlink to a path outside the repository")
LINT_RULES.add("layout-root-clash", "two roots of layout (salt/pipeline.yaml) hold a file at the same salt:// path")

REQUISITES = (
    "require",
    "watch",
    "prereq",
    "onchanges",
    "onfail",
    "use",
    "listen",
    "require_any",
    "watch_any",
    "onchanges_any",
    "onfail_any",
    "onfail_all",
)
REQUISITE_KEYS = REQUISITES + tuple(f"{r}_in" for r in ("require", "watch", "prereq", "onchanges", "onfail", "use", "listen"))


@dataclass
class MinionRender:
    """What one fixture minion rendered: outcomes and declarations per SLS, and its highstate roots."""

    minion: MinionFixture
    outcomes: dict[str, RenderOutcome] = field(default_factory=dict)
    decls: dict[str, list[StateDecl]] = field(default_factory=dict)
    top_roots: list[str] | None = None


@dataclass(frozen=True)
class _Include:
    target: str | None
    raw: str
    line: int
    matches: tuple[str, ...]


def _finding(rule: str, path: str, line: int, message: str, state_id: str | None = None, key: str | None = None,
             severity: Severity = Severity.ERROR) -> Finding:
    return Finding(rule=rule, severity=severity, path=path, line=max(1, line), message=message, state_id=state_id, key=key)


class StructureChecker:
    """Runs the structure checks for one minion's renders. ``selected`` limits which SLS get findings
    (``--changed-since``); everything rendered still counts as context."""

    def __init__(self, tree: SourceTree, index: StateFunctionIndex, selected: Iterable[str] | None = None) -> None:
        self.tree = tree
        self.index = index
        self.selected = set(selected) if selected is not None else None

    def _reports(self, name: str) -> bool:
        return self.selected is None or name in self.selected

    # ------------------------------------------------------------------------------------------ top file

    def check_top(self, outcome: RenderOutcome, run: MinionRender, matches: Any) -> list[Finding]:
        """Check rendered top data (every SLS it names exists) and set ``run.top_roots`` to the SLS the
        minion gets. ``matches(target, data)`` says whether the minion matches a top target."""
        path = self.tree.rel(outcome.path)
        source = self.tree.source(outcome.path)
        out: list[Finding] = []
        data = outcome.data or {}
        roots: list[str] = []
        if not isinstance(data, Mapping):
            return [_finding(SLS_STRUCTURE, path, 1, "top.sls must map saltenvs to targets")]
        for saltenv, body in data.items():
            env_line = source.locate_key(str(saltenv)) or 1
            if not isinstance(body, Mapping):
                out.append(_finding(SLS_STRUCTURE, path, env_line, f"saltenv {saltenv!r} must map targets to SLS lists"))
                continue
            for target, items in body.items():
                target_line = source.locate_key(str(target), after=env_line - 1) or env_line
                items = [items] if isinstance(items, str) else items
                if not isinstance(items, list):
                    out.append(_finding(SLS_STRUCTURE, path, target_line, f"target {target!r} must have a list of SLS"))
                    continue
                names = [i for i in items if isinstance(i, str)]
                for name in names:
                    if not self.tree.matching(name):
                        line = source.find(name, after=target_line - 1) or target_line
                        out.append(
                            _finding(
                                TOP_MISSING_SLS,
                                path,
                                line,
                                f"top.sls assigns SLS {name!r} to {target!r} (saltenv {saltenv}), but there is no "
                                f"states/{name.replace('.', '/')}.sls or states/{name.replace('.', '/')}/init.sls",
                                key=f"{saltenv}|{target}|{name}",
                            )
                        )
                if saltenv == "base" and matches(str(target), items):
                    for name in names:
                        roots += self.tree.matching(name)
        run.top_roots = roots
        return out

    # ------------------------------------------------------------------------------------- per SLS checks

    def check(self, run: MinionRender) -> list[Finding]:
        """Every check but the top file's, for one minion."""
        out: list[Finding] = []
        graph: dict[str, list[_Include]] = {}
        for name, outcome in run.outcomes.items():
            if outcome.data is None:
                continue
            includes, findings = self._includes(name, outcome)
            graph[name] = includes
            if self._reports(name):
                out += findings
                out += self._shape(name, outcome)
        out += self._cycles(graph)
        closures = _Closures(graph)
        out += self._duplicates(run, closures)
        for name, decls in run.decls.items():
            if self._reports(name):
                out += self._functions(decls)
        out += self._requisites(run, closures)
        return out

    def _includes(self, name: str, outcome: RenderOutcome) -> tuple[list[_Include], list[Finding]]:
        data = outcome.data or {}
        path = self.tree.rel(outcome.path)
        source = self.tree.source(outcome.path)
        raw_list = data.get("include", [])
        include_line = source.locate_key("include") or 1
        if not isinstance(raw_list, list):
            return [], [_finding(SLS_STRUCTURE, path, include_line, "include must be a list of SLS names")]
        out: list[_Include] = []
        findings: list[Finding] = []
        for entry in raw_list:
            target, raw = self.tree.resolve_include(entry, name)
            line = source.find(raw.lstrip("."), after=include_line - 1) or include_line
            matches = tuple(self.tree.matching(target)) if target else ()
            out.append(_Include(target, raw, line, matches))
            if target is None:
                findings.append(_finding(INCLUDE_MISSING, path, line, f"relative include {raw!r} climbs above the top of states/", key=raw))
            elif not matches:
                findings.append(
                    _finding(
                        INCLUDE_MISSING,
                        path,
                        line,
                        f"include {raw!r} names SLS {target!r}, which does not exist (no states/{target.replace('.', '/')}.sls "
                        f"or states/{target.replace('.', '/')}/init.sls)",
                        key=raw,
                    )
                )
        return out, findings

    def _shape(self, name: str, outcome: RenderOutcome) -> list[Finding]:
        data = outcome.data or {}
        path = self.tree.rel(outcome.path)
        source = self.tree.source(outcome.path)
        out = []
        for state_id, body in data.items():
            if state_id in RESERVED_KEYS or (isinstance(state_id, str) and state_id.startswith("__")):
                continue
            line = source.locate_key(str(state_id)) or 1
            body = state_body(body)  # the short form `ID: pkg.installed` is valid Salt
            if not isinstance(body, Mapping):
                out.append(
                    _finding(SLS_STRUCTURE, path, line, f"state ID {state_id!r} must map to state declarations, got {type(body).__name__}", str(state_id))
                )
                continue
            modules: dict[str, list[str]] = {}
            for key, value in body.items():
                if not isinstance(key, str) or key.startswith("__"):
                    continue
                module, _, function = key.partition(".")
                if not function and isinstance(value, list):
                    function = next((v for v in value if isinstance(v, str)), "")
                modules.setdefault(module, []).append(function)
                if value is not None and not isinstance(value, list):
                    out.append(_finding(SLS_STRUCTURE, path, line, f"the arguments of {key} must be a list", str(state_id), key=key))
            for module, functions in modules.items():
                if len(functions) > 1:
                    out.append(
                        _finding(
                            SLS_STRUCTURE,
                            path,
                            line,
                            f"state ID {state_id!r} declares {len(functions)} functions of {module!r} "
                            f"({', '.join(f or '?' for f in functions)}); Salt allows one per module and ID",
                            str(state_id),
                            key=f"multi:{module}",
                        )
                    )
        return out

    def _cycles(self, graph: dict[str, list[_Include]]) -> list[Finding]:
        out: list[Finding] = []
        seen: set[tuple[str, ...]] = set()
        state: dict[str, int] = {}
        stack: list[str] = []

        def visit(node: str) -> None:
            state[node] = 1
            stack.append(node)
            for inc in graph.get(node, ()):
                for nxt in inc.matches:
                    if state.get(nxt) == 1:
                        cycle = stack[stack.index(nxt):]
                        start = cycle.index(min(cycle))
                        canon = tuple(cycle[start:] + cycle[:start])
                        if canon not in seen:
                            seen.add(canon)
                            out.extend(self._cycle_finding(canon, graph))
                    elif nxt not in state and nxt in graph:
                        visit(nxt)
            stack.pop()
            state[node] = 2

        for node in sorted(graph):
            if node not in state:
                visit(node)
        return out

    def _cycle_finding(self, cycle: tuple[str, ...], graph: dict[str, list[_Include]]) -> list[Finding]:
        first, second = cycle[0], cycle[1 % len(cycle)]
        if not self._reports(first) and not any(self._reports(c) for c in cycle):
            return []
        include = next((i for i in graph[first] if second in i.matches), None)
        path = self.tree.rel(self.tree.sls[first])
        chain = " -> ".join(cycle + (cycle[0],))
        return [
            _finding(
                INCLUDE_CYCLE,
                path,
                include.line if include else 1,
                f"include cycle {chain}: Salt silently skips the repeated include, so the order of states and "
                "what each SLS really needs become unclear; break the cycle",
                key=chain,
            )
        ]

    def _duplicates(self, run: MinionRender, closures: _Closures) -> list[Finding]:
        out: dict[tuple[str, str], Finding] = {}
        ids: dict[str, dict[str, StateDecl]] = {
            name: {d.state_id: d for d in decls if not d.in_extend} for name, decls in run.decls.items()
        }
        roots: list[tuple[str, frozenset[str]]] = [(f"state.apply {n}", closures.closure([n])) for n in sorted(ids)]
        if run.top_roots:
            roots.append((f"the highstate of {run.minion.minion_id}", closures.closure(run.top_roots)))
        for label, members in roots:
            owner: dict[str, str] = {}
            for name in sorted(members):
                for state_id, decl in ids.get(name, {}).items():
                    first = owner.setdefault(state_id, name)
                    if first == name or (decl.path, state_id) in out or not self._reports(name):
                        continue
                    other = self.tree.rel(self.tree.sls[first])
                    out[(decl.path, state_id)] = _finding(
                        DUPLICATE_STATE_ID,
                        decl.path,
                        decl.line,
                        f"state ID {state_id!r} is also declared in {other}, and both meet in {label}: "
                        "state IDs must be unique in a run; rename one",
                        state_id,
                        key=f"{state_id}|{other}",
                    )
        return list(out.values())

    def _functions(self, decls: list[StateDecl]) -> list[Finding]:
        out = []
        for decl in decls:
            if decl.function is None:
                if not decl.in_extend:
                    out.append(_finding(SLS_STRUCTURE, decl.path, decl.line, f"state {decl.state_id!r} uses module {decl.module!r} without a function", decl.state_id, key=decl.module))
                continue
            problem = self.index.check(decl.module, decl.function)
            if problem:
                out.append(_finding(UNKNOWN_STATE_FUNCTION, decl.path, decl.line, f"{decl.fun}: {problem}", decl.state_id, key=decl.fun))
        return out

    def _requisites(self, run: MinionRender, closures: _Closures) -> list[Finding]:
        lookup = _DeclLookup(run.decls)
        failed = {n for n, o in run.outcomes.items() if o.data is None}
        highstate = closures.closure(run.top_roots) if run.top_roots else frozenset()
        out: list[Finding] = []
        for name, decls in run.decls.items():
            if not self._reports(name):
                continue
            scope = set(closures.closure([name]))
            for ancestor in closures.ancestors(name):
                scope |= closures.closure([ancestor])
            if name in highstate:
                scope |= highstate
            if scope & failed or any(n not in run.outcomes for n in scope):
                continue  # part of the context did not render: a dangling verdict would be a guess
            for decl in decls:
                for key in REQUISITE_KEYS:
                    if key not in decl.args:
                        continue
                    for module, target in _targets(decl.args[key]):
                        if not lookup.resolves(module, target, scope):
                            shown = f"{module}: {target}" if module else target
                            out.append(
                                _finding(
                                    DANGLING_REQUISITE,
                                    decl.path,
                                    decl.line_of(key),
                                    f"{key} of {decl.fun} points at {shown!r}, which no run containing "
                                    f"{name!r} declares; include the SLS that declares it or fix the name",
                                    decl.state_id,
                                    key=f"{key}|{shown}",
                                )
                            )
        return out


def _targets(value: Any) -> Iterable[tuple[str | None, str]]:
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str):
            yield None, item
        elif isinstance(item, Mapping):
            for module, target in item.items():
                yield str(module), str(target)


class _Closures:
    """Include closures and transitive includers over one minion's include graph (memoized)."""

    def __init__(self, graph: dict[str, list[_Include]]) -> None:
        self.graph = {n: sorted({m for inc in incs for m in inc.matches}) for n, incs in graph.items()}
        self.reverse: dict[str, set[str]] = {}
        for node, targets in self.graph.items():
            for target in targets:
                self.reverse.setdefault(target, set()).add(node)
        self._down: dict[str, frozenset[str]] = {}
        self._up: dict[str, frozenset[str]] = {}

    def closure(self, roots: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for root in roots:
            if root not in self._down:
                self._down[root] = _reach(root, self.graph)
            out |= self._down[root]
        return frozenset(out)

    def ancestors(self, node: str) -> frozenset[str]:
        if node not in self._up:
            self._up[node] = _reach(node, self.reverse) - {node}
        return self._up[node]


def _reach(start: str, edges: Mapping[str, Iterable[str]]) -> frozenset[str]:
    seen = {start}
    todo = [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return frozenset(seen)


class _DeclLookup:
    """Which SLS declare a state, by ID, by name and by module - so requisites resolve without scans."""

    def __init__(self, decls: Mapping[str, list[StateDecl]]) -> None:
        self.by_id: dict[str, set[str]] = {}
        self.by_name: dict[str, set[str]] = {}
        self.by_mod: dict[tuple[str, str], set[str]] = {}
        self.all: list[tuple[str, StateDecl, tuple[str, ...]]] = []
        for sls, items in decls.items():
            for decl in items:
                names = _names(decl)
                self.by_id.setdefault(decl.state_id, set()).add(sls)
                self.by_mod.setdefault((decl.module, decl.state_id), set()).add(sls)
                for n in names:
                    self.by_name.setdefault(n, set()).add(sls)
                    self.by_mod.setdefault((decl.module, n), set()).add(sls)
                self.all.append((sls, decl, names))

    def resolves(self, module: str | None, target: str, scope: set[str] | frozenset[str]) -> bool:
        if module == "sls":
            return any(n == target or fnmatch.fnmatchcase(n, target) for n in scope)
        if any(c in target for c in "*?["):
            return any(
                sls in scope and (module in (None, "id", decl.module))
                and (fnmatch.fnmatchcase(decl.state_id, target) or any(fnmatch.fnmatchcase(n, target) for n in names))
                for sls, decl, names in self.all
            )
        if module in (None, "id"):
            found = self.by_id.get(target, set()) | (self.by_name.get(target, set()) if module is None else set())
        else:
            found = self.by_mod.get((module, target), set())
        return bool(found & scope)


def _names(decl: StateDecl) -> tuple[str, ...]:
    out = [str(decl.name)]
    names = decl.args.get("names")
    if isinstance(names, list):
        for item in names:
            if isinstance(item, Mapping):
                out += [str(k) for k in item]
            else:
                out.append(str(item))
    return tuple(out)
