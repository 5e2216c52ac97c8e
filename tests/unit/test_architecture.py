"""
The shape of ``pipeline/`` that docs/architecture.md draws, checked on the source: no import cycle among its modules,
and imports only point down the layers (CLI → stages → infrastructure → foundation).

The import graph is read with ``ast`` from every ``.py`` file under ``pipeline/``, nothing is imported: an import
inside a function or under ``if TYPE_CHECKING:`` counts like one at the top of the module (a function-level import
hides a cycle, it does not remove it). An edge goes to the module an import names: ``from pkg import sub`` to
``pkg.sub`` when that is a module, ``from pkg import thing`` to ``pkg`` itself (its ``__init__`` defines ``thing``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "pipeline"

# Layer of each module, by the longest matching dotted prefix. The table in docs/architecture.md says the same;
# a module that matches no prefix fails test_every_module_has_a_layer, so a new package has to be placed.
LAYERS: Mapping[str, str] = {
    # CLI: parse, call a stage, format its result, set the exit code.
    "pipeline.__main__": "cli",
    "pipeline.cli": "cli",
    "pipeline.cli_options": "cli",
    "pipeline.context": "cli",
    "pipeline.commands": "cli",
    # Stages: one job of the pipeline each, a typed context in, a typed result out.
    "pipeline.adopt": "stage",
    "pipeline.lint": "stage",
    "pipeline.policy": "stage",
    "pipeline.review": "stage",
    "pipeline.mrnote": "stage",
    "pipeline.impact": "stage",
    "pipeline.release": "stage",
    "pipeline.sync": "stage",
    "pipeline.rollout": "stage",
    "pipeline.deployments": "stage",
    "pipeline.notify": "stage",
    "pipeline.formatters": "stage",
    "pipeline.web": "stage",
    "pipeline.demo": "stage",
    "pipeline.runtime_policy": "stage",
    # Infrastructure: transports and daemons behind small interfaces.
    "pipeline.salt_client": "infrastructure",
    "pipeline.salt_access": "infrastructure",
    "pipeline.gitlab": "infrastructure",
    "pipeline.sync.target": "infrastructure",
    "pipeline.sync.local": "infrastructure",
    "pipeline.sync.ssh": "infrastructure",
    "pipeline.sync.salt_remote": "infrastructure",
    "pipeline.sync.attest": "infrastructure",
    "pipeline.sync.layout": "infrastructure",
    "pipeline.topology": "infrastructure",
    "pipeline.lock": "infrastructure",
    # Foundation: errors, configuration models and the data formats everything shares.
    "pipeline": "foundation",
    "pipeline.errors": "foundation",
    "pipeline.config": "foundation",
    "pipeline.schema": "foundation",
    "pipeline.yamlsrc": "foundation",
    "pipeline.yamlmodel": "foundation",
    "pipeline.layout": "foundation",
    "pipeline.findings": "foundation",
    "pipeline.saltlib": "foundation",
    "pipeline.freeze": "foundation",
    "pipeline.jsonfile": "foundation",
    "pipeline.userfiles": "foundation",
    "pipeline.release.manifest": "foundation",
    "pipeline.release.tree": "foundation",
}

# What each layer may import (its own layer included). Imports point down, never up.
MAY_IMPORT: Mapping[str, frozenset[str]] = {
    "cli": frozenset({"cli", "stage", "infrastructure", "foundation"}),
    "stage": frozenset({"stage", "infrastructure", "foundation"}),
    "infrastructure": frozenset({"infrastructure", "foundation"}),
    "foundation": frozenset({"foundation"}),
}

# Known exceptions to MAY_IMPORT, each with its reason: (importer, imported), the importer a module or a package
# (then any module in it). Empty is the goal; an entry is a debt, not a rule.
ALLOWED_EXCEPTIONS: Mapping[tuple[str, str], str] = {}


def _excepted(module: str, target: str) -> bool:
    return any(target == imported and (module == importer or module.startswith(importer + "."))
               for importer, imported in ALLOWED_EXCEPTIONS)


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module under ``root`` (a package's name stands for its ``__init__.py``)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _imported(node: ast.AST, package: str, modules: Mapping[str, Path]) -> Iterable[str]:
    """
    The modules of ``modules`` an import statement names: ``import a.b`` names ``a.b``; ``from a import b`` names
    ``a.b`` when that is a module, else ``a`` (``b`` is defined in ``a/__init__.py``). Relative imports are resolved
    against ``package``.
    """
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(base_parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            yield submodule if submodule in modules else base


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of ``root``'s package it imports anywhere in its body."""
    modules = module_names(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            graph[name].update(t for t in _imported(node, package, modules) if t in modules and t != name)
    return graph


def import_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return sorted(cycles)


def layer_of(module: str) -> str | None:
    """The layer of ``module`` by its longest prefix in LAYERS (``pipeline`` alone only itself), or None."""
    if module == "pipeline":
        return LAYERS["pipeline"]
    parts = module.split(".")
    for end in range(len(parts), 1, -1):
        layer = LAYERS.get(".".join(parts[:end]))
        if layer is not None:
            return layer
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(PACKAGE)


def test_the_checker_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    # The checker itself: a cycle closed only inside a function body, and one through a relative import.
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import thing\n")
    (pkg / "b.py").write_text("def f():\n    from pkg import a\n    return a\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from . import d\n")
    (pkg / "sub" / "d.py").write_text("from ..sub import c\n")
    (pkg / "e.py").write_text("import pkg.a\n")
    found = import_cycles(import_graph(pkg))
    assert found == [["pkg.a", "pkg.b"], ["pkg.sub.c", "pkg.sub.d"]]


def test_no_import_cycle_among_pipeline_modules(graph: dict[str, set[str]]) -> None:
    cycles = import_cycles(graph)
    assert not cycles, "import cycles (move the shared part down, or pass it in):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles
    )


def test_every_module_has_a_layer(graph: dict[str, set[str]]) -> None:
    unplaced = sorted(module for module in graph if layer_of(module) is None)
    assert not unplaced, f"put these modules in a layer (LAYERS here, the table in docs/architecture.md): {unplaced}"


def upward_imports(graph: Mapping[str, set[str]]) -> list[str]:
    """Each import that MAY_IMPORT does not allow and ALLOWED_EXCEPTIONS does not name, as one line."""
    upward = []
    for module, targets in sorted(graph.items()):
        layer = layer_of(module)
        for target in sorted(targets):
            if layer_of(target) not in MAY_IMPORT[layer] and not _excepted(module, target):
                upward.append(f"{module} ({layer}) imports {target} ({layer_of(target)})")
    return upward


def test_the_checker_finds_an_upward_import() -> None:
    graph = {
        "pipeline.topology.local": {"pipeline.commands.topology", "pipeline.errors"},
        "pipeline.lint.run": {"pipeline.salt_client.base", "pipeline.config"},
        "pipeline.errors": {"pipeline.rollout.model"},
    }
    assert upward_imports(graph) == [
        "pipeline.errors (foundation) imports pipeline.rollout.model (stage)",
        "pipeline.topology.local (infrastructure) imports pipeline.commands.topology (cli)",
    ]


def test_imports_point_down_the_layers(graph: dict[str, set[str]]) -> None:
    upward = upward_imports(graph)
    assert not upward, "imports that point up the layers (docs/architecture.md):\n" + "\n".join(upward)


def two_way_arrows(graph: Mapping[str, set[str]]) -> list[str]:
    """Each pair of top-level packages of ``pipeline`` (``pipeline.lint``, ``pipeline.errors``...) that import each
    other, through any of their modules, as one line naming an import each way."""
    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    arrows: dict[tuple[str, str], str] = {}
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if package(module) != package(target):
                arrows.setdefault((package(module), package(target)), f"{module} -> {target}")
    return [f"{a} <-> {b}: {arrows[a, b]}; {arrows[b, a]}"
            for a, b in sorted(arrows) if a < b and (b, a) in arrows]


def test_the_checker_finds_a_two_way_arrow() -> None:
    graph = {
        "pipeline.lint.run": {"pipeline.policy.engine", "pipeline.config"},
        "pipeline.policy.check": {"pipeline.lint.analysis"},
        "pipeline.policy.engine": {"pipeline.config"},
        "pipeline.config": set(),
    }
    assert two_way_arrows(graph) == [
        "pipeline.lint <-> pipeline.policy: pipeline.lint.run -> pipeline.policy.engine; "
        "pipeline.policy.check -> pipeline.lint.analysis",
    ]


def test_no_two_way_arrow_between_packages(graph: dict[str, set[str]]) -> None:
    # Two packages that import each other are one package in two places: what both need belongs below them, or
    # the entry that needs the other belongs in it (docs/architecture.md, "No two-way arrows between packages").
    both_ways = two_way_arrows(graph)
    assert not both_ways, "packages that import each other:\n" + "\n".join(both_ways)


@pytest.mark.parametrize("layer", ["stage", "infrastructure", "foundation"])
def test_nothing_below_the_cli_imports_commands_or_the_cli(graph: dict[str, set[str]], layer: str) -> None:
    # The rule the others rest on, stated on its own: stages and infrastructure never reach back into commands/.
    offenders = [
        f"{module} imports {target}"
        for module, targets in sorted(graph.items())
        if layer_of(module) == layer
        for target in sorted(targets)
        if layer_of(target) == "cli"
    ]
    assert not offenders, "\n".join(offenders)


def test_the_allowed_exceptions_are_still_needed(graph: dict[str, set[str]]) -> None:
    stale = [
        f"{importer} -> {imported}"
        for importer, imported in ALLOWED_EXCEPTIONS
        if not any(imported in targets for module, targets in graph.items()
                   if module == importer or module.startswith(importer + "."))
    ]
    assert not stale, f"remove these from ALLOWED_EXCEPTIONS, the import is gone: {stale}"


def test_the_doc_table_matches_the_layers() -> None:
    # docs/architecture.md, "The packages": one row per LAYERS entry, `| `pipeline.x` | layer | ... |`.
    rows = {}
    for line in (REPO / "docs" / "architecture.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`pipeline"):
            rows[cells[0].strip("`")] = cells[1]
    assert rows == dict(LAYERS)
