"""The shared core of ``saltpipe lint`` and ``saltpipe policy check``: build the policy's documents from
files and Salt renders, run the engine on them, and collect render and structure findings.

Order matters for safety: the template rules read every Jinja source *before* anything is rendered, and an SLS
whose renderer the policy does not allow, or whose Jinja reaches for Python internals, is never rendered
(its text is analysed instead). Rendering itself goes through :class:`~pipeline.lint.render.SaltRenderer`,
whose ``salt`` only runs read-only functions.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline.findings import Coverage, Finding, MinionCoverage, Report, Severity, UnrenderedBranch
from pipeline.lint.bounds import RENDER_LIMIT, RenderLimits
from pipeline.lint.coverage import Branch, BranchTracker, find_branches
from pipeline.lint.fixtures import MinionFixture
from pipeline.lint.render import RenderOutcome, SaltRenderer
from pipeline.lint.sources import PYTHON_RENDERERS, SourceTree, render_pipe
from pipeline.lint.statefuncs import StateFunctionIndex
from pipeline.lint.structure import SLS_RENDER_ERROR, MinionRender, StructureChecker
from pipeline.policy.engine import Finalized, PolicyEngine, internal_error
from pipeline.policy.model import PythonDoc, SlsDoc, SourceText, TemplateDoc
from pipeline.policy.states import states_from_high, states_from_text

RENDER_STUBBED_CALL = "render-stubbed-call"
TOP_MATCH_ERROR = "top-match-error"
SYMLINK_OUTSIDE_REPO = "symlink-outside-repo"
PYTHON_SYNTAX_ERROR = "python-syntax-error"
_BLOCKING_TEMPLATE_RULES = frozenset({"jinja-sandbox-escape"})


@dataclass(frozen=True)
class SlsTarget:
    """An SLS to check: its name under ``root`` (the file_roots it is rendered from) and its file."""

    name: str
    path: Path
    root: Path


@dataclass
class Analysis:
    """Findings and counters collected by the functions below."""

    findings: list[Finding] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)
    stats: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: What the fixture renders covered (:func:`render_and_check`); None when nothing was rendered.
    coverage: Coverage | None = None

    def count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n

    def report(self, tool: str, final: Finalized) -> Report:
        """The :class:`Report` of ``tool``: ``final`` (the findings after the policy file) with what was
        checked, the counters, the notes and the coverage collected here."""
        return Report(
            tool=tool,
            findings=final.findings,
            waived=final.waived,
            checked=tuple(self.checked),
            stats=dict(self.stats),
            notes=tuple(self.notes),
            security_review_required=final.security_review_required,
            coverage=self.coverage,
        )


def check_python(engine: PolicyEngine, sources: Iterable[SourceText], out: Analysis, *, report_syntax: bool) -> None:
    """Policy rules on Python files; a file that does not parse is a ``python-syntax-error`` when
    ``report_syntax`` (pylint reports it otherwise)."""
    for source in sources:
        doc = PythonDoc(source)
        out.findings += engine.check_python(doc)
        out.checked.add(source.path)
        out.count("python")
        if doc.syntax_error and report_syntax:
            line = int(doc.syntax_error.split(":")[0].removeprefix("line ") or 1) if doc.syntax_error.startswith("line ") else 1
            out.findings.append(
                Finding(PYTHON_SYNTAX_ERROR, Severity.ERROR, source.path, max(1, line), f"does not parse ({doc.syntax_error}): the policy cannot check it")
            )


def check_templates(engine: PolicyEngine, sources: Iterable[tuple[SourceText, tuple[str, ...]]], out: Analysis) -> set[str]:
    """Template rules on Jinja sources (``(source, render pipe)``; Python-rendered SLS go to the Python rules).
    Returns the paths that must not be rendered (a blocking template finding)."""
    blocked: set[str] = set()
    for source, pipe in sources:
        out.checked.add(source.path)
        if PYTHON_RENDERERS & set(pipe):
            check_python(engine, [source], out, report_syntax=True)
            continue
        if "jinja" not in pipe:
            continue
        found = engine.check_template(TemplateDoc(source))
        out.findings += found
        out.count("templates")
        if any(f.rule in _BLOCKING_TEMPLATE_RULES for f in found):
            blocked.add(source.path)
    return blocked


def render_and_check(
    engine: PolicyEngine,
    tree: SourceTree,
    targets: Sequence[SlsTarget],
    minions: Sequence[MinionFixture],
    out: Analysis,
    *,
    blocked: set[str],
    index: StateFunctionIndex | None = None,
    selected: Iterable[str] | None = None,
    check_top: bool = False,
    report_render_errors: bool = True,
    limits: RenderLimits | None = None,
) -> None:
    """Render every target for every minion (one :class:`SaltRenderer` per file_roots), run the policy on the
    rendered states (or on the text of what did not render), and with ``index`` the structure checks.
    Without ``report_render_errors`` (the policy alone) a render error is a note, not a finding. A render that
    goes past ``limits`` (:mod:`pipeline.lint.bounds`) is a ``render-limit`` error on that file, which is then
    not analysed further (its text could be the same bomb); the run goes on."""
    allowed = engine.policy.renderers
    render_errors: dict[tuple[str, int, str], list[str]] = {}
    stubbed: dict[tuple[str, str], Finding] = {}
    rendered_ok: set[str] = set()
    limited: dict[str, Finding] = {}
    untimed = False
    by_root: dict[Path, list[SlsTarget]] = {}
    for target in targets:
        by_root.setdefault(target.root, []).append(target)
    if check_top and tree.top is not None:
        by_root.setdefault(tree.states_root, [])  # top.sls is checked even when no SLS is selected
    started = time.perf_counter()
    tracker = BranchTracker()
    rendered_by: dict[str, set[str]] = {m.label: set() for m in minions}
    for root, group in sorted(by_root.items()):
        renderable = []
        for target in group:
            source = tree.source(target.path)
            pipe = render_pipe(source.shebang)
            if source.path in blocked or not set(pipe) <= set(allowed):
                continue
            renderable.append(target)
            if "jinja" in pipe:
                tracker.register(source.path, _salt_text(target.path, source.text))
        extra = tree.extra_roots if root == tree.states_root else ()  # more roots of base: Salt merges them
        with SaltRenderer(
            root, allowed, engine.policy.render_functions, tree.rel, extra_roots=extra, limits=limits or RenderLimits(), tracker=tracker
        ) as renderer:
            for minion in minions:
                renderer.use(minion)
                run = MinionRender(minion)
                checker = StructureChecker(tree, index, selected) if index is not None else None
                if check_top and checker is not None and tree.top is not None and root == tree.states_root:
                    top = renderer.render(tree.top, "")
                    if top.ok:
                        out.findings += checker.check_top(top, run, renderer.top_matches)
                    else:
                        _record_error(tree, top, minion, render_errors)
                for target in renderable:
                    source = tree.source(target.path)
                    if source.path in limited:
                        continue
                    tracker.start()
                    outcome = renderer.render(target.path, target.name)
                    untimed = untimed or not renderer.timed
                    out.count("renders")
                    if outcome.limited:
                        limited[source.path] = Finding(
                            RENDER_LIMIT, Severity.ERROR, source.path, source.clamp(outcome.error_line),
                            f"{outcome.error} (rendering as {minion.label})", key=RENDER_LIMIT,
                        )
                        continue
                    run.outcomes[target.name] = outcome
                    decls: list = []
                    if outcome.ok:
                        assert outcome.data is not None
                        try:
                            decls = states_from_high(outcome.data, source, target.name)
                        except Exception as exc:  # pylint: disable=broad-except  # odd data must not stop the run
                            out.findings.append(internal_error(source.path, "reading the rendered states", exc))
                        run.decls[target.name] = decls
                        rendered_ok.add(target.path.as_posix())
                        rendered_by[minion.label].add(source.path)
                        tracker.keep()
                    else:
                        _record_error(tree, outcome, minion, render_errors)
                    doc = SlsDoc(
                        source=source,
                        sls=target.name,
                        renderers=render_pipe(source.shebang),
                        states=tuple(decls),
                        rendered=outcome.ok,
                        render_calls=outcome.calls,
                        context=minion.label,
                    )
                    out.findings += engine.check_sls(doc)
                    for call in outcome.calls:
                        if not call.executed and not engine.ctx.functions.forbidden(call.function):
                            stubbed.setdefault(
                                (call.path, call.function),
                                Finding(
                                    RENDER_STUBBED_CALL,
                                    Severity.INFO,
                                    call.path,
                                    call.line,
                                    f"salt[{call.function!r}] was not run while linting (not in the policy's "
                                    "render_functions): the template saw an empty value there",
                                    key=call.function,
                                ),
                            )
                if checker is not None:
                    try:
                        out.findings += checker.check(run)
                    except Exception as exc:  # pylint: disable=broad-except  # crash isolation
                        out.findings.append(internal_error(tree.rel(root), f"structure checks for {minion.label}", exc))
            if check_top and tree.top is not None and root == tree.states_root:
                out.findings += _top_problems(tree, tree.top, renderer.top_problems)
    out.timings["render"] = out.timings.get("render", 0.0) + time.perf_counter() - started
    out.findings += limited.values()
    if untimed:
        out.notes.append("renders ran without the per-file time limit (not in the main thread)")
    for (path, line, message), labels in render_errors.items():
        if report_render_errors:
            out.findings.append(
                Finding(SLS_RENDER_ERROR, Severity.ERROR, path, line, f"{message} (rendering as {', '.join(labels)})", key=message)
            )
        else:
            out.notes.append(f"{path}:{line}: did not render ({message}); its template text was checked instead")
    out.findings += stubbed.values()
    # The template text too: what never rendered is analysed only from its text; what did render is read
    # again for the Jinja branches that no fixture minion took ({% if grains.id == 'db-7' %}cmd.run...).
    reported = {(f.rule, f.path, f.line) for f in out.findings}
    never: list[str] = []
    branches: list[UnrenderedBranch] = []
    unmapped: list[str] = []
    for target in targets:
        out.checked.add(tree.rel(target.path))
        out.count("sls")
        source = tree.source(target.path)
        if source.path in limited:
            continue
        pipe = render_pipe(source.shebang)
        # Python-rendered SLS are read by the Python rules; here only their render pipe is judged.
        states = () if PYTHON_RENDERERS & set(pipe) else tuple(states_from_text(source, target.name))
        doc = SlsDoc(source=source, sls=target.name, renderers=pipe, states=states, rendered=False)
        if target.path.as_posix() not in rendered_ok:
            out.findings += engine.check_sls(doc)
            out.count("text_fallback")
            never.append(source.path)
            continue
        missed = tracker.unreached(source.path)
        if missed is None:  # branches not mapped: the whole text, as before markers existed
            unmapped.append(source.path)
            for finding in engine.check_sls(doc):
                if (finding.rule, finding.path, finding.line) not in reported:
                    out.findings.append(replace(finding, message=f"{finding.message} (in the template text: no fixture minion renders this part)"))
            continue
        branches += [UnrenderedBranch(source.path, b.start_line, b.end_line, b.kind) for b in missed]
        out.findings += _branch_findings(engine, source, target.name, missed)
    if minions and targets:
        paths = {tree.source(t.path).path for t in targets}
        out.coverage = Coverage(
            sls=len(paths),
            minions=tuple(
                MinionCoverage(label, len(ok), len(paths - ok - set(limited)), len(set(limited) - ok)) for label, ok in rendered_by.items()
            ),
            never_rendered=tuple(never),
            unrendered_branches=tuple(branches),
            unmapped=tuple(unmapped),
        )


def _salt_text(path: Path, fallback: str) -> str:
    """The file's text as Salt reads it (bytes decoded, newlines as written): what Jinja compiles."""
    try:
        return path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return fallback


def _blank(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with the characters of ``spans`` replaced by spaces (newlines kept: lines stay where they are)."""
    chars = list(text)
    for start, end in spans:
        for i in range(start, end):
            if chars[i] not in "\r\n":
                chars[i] = " "
    return "".join(chars)


def _branch_findings(engine: PolicyEngine, source: SourceText, sls: str, missed: Sequence[Branch]) -> list[Finding]:
    """Policy findings in the text of the Jinja branches no render reached (``missed``, outermost ones).

    The template is read twice from its text: once with the reached alternatives of each missed branch blanked
    (an ``{% else %}`` taken instead of the ``{% if %}``: what Salt would render on a minion taking the missed
    branch, Jinja blanked), once with the missed branches blanked. What only the first reading finds comes from
    the missed branches' text: a cmd.* state, a shell string in onlyif/unless/check_cmd, any state rule."""
    if not missed:
        return []
    spans = find_branches(source.text)
    if spans is None or len(spans) <= max(b.index for b in missed):
        return []
    missed_ids = {b.index for b in missed}
    inside = [spans[i] for i in missed_ids]

    def within(branch: Branch, outer: Branch) -> bool:
        return outer.offset <= branch.offset < outer.end

    # Reached alternatives: branches of the same chain (same parent) as a missed one, reached, with no missed inside.
    alternatives = [
        b for b in spans
        if b.index not in missed_ids and any(m.parent == b.parent and m.kind != "macro" for m in inside)
        and b.kind in ("if", "elif", "else", "for", "for-else")
        and not any(within(m, b) for m in inside) and not any(within(b, m) for m in inside)
    ]
    with_missed = _blank(source.text, ((b.offset, b.end) for b in alternatives))
    without = _blank(source.text, ((b.offset, b.end) for b in inside))

    def findings(text: str) -> list[Finding]:
        projected = SourceText(source.path, text)
        doc = SlsDoc(source=projected, sls=sls, renderers=render_pipe(source.shebang), states=tuple(states_from_text(projected, sls)))
        return engine.check_states(doc)

    base = {(f.rule, f.line, f.key) for f in findings(without)}
    out = []
    for finding in findings(with_missed):
        if (finding.rule, finding.line, finding.key) in base:
            continue
        where = next((b for b in inside if b.start_line <= finding.line <= b.end_line), None)
        lines = f", lines {where.lines}" if where else ""
        out.append(replace(finding, message=f"{finding.message} (in a Jinja branch no fixture minion renders{lines}: checked from its text)"))
    return out


def outside_link_findings(tree: SourceTree) -> list[Finding]:
    """One finding per symlink that leaves the repository: it is not read, rendered or released as lint saw it."""
    out = []
    for link in tree.outside:
        where_to = link.resolve()
        out.append(
            Finding(
                SYMLINK_OUTSIDE_REPO, Severity.ERROR, tree.link_rel(link), 1,
                f"symlink to {where_to} (outside the repository): lint does not read it and a release would not "
                "contain what it points to; commit the file itself",
                key=str(where_to),
            )
        )
    return out


def _top_problems(tree: SourceTree, top: Path, problems: Iterable[tuple[str, str, str]]) -> list[Finding]:
    """Top file targets Salt cannot match, at the target's ``match:`` line (or the target's)."""
    source = tree.source(top)
    out = []
    for target, matcher, problem in sorted(problems):
        target_line = source.find(f"{target}:") or source.find(target) or 1
        line = source.find("match:", after=target_line - 1) if problem.startswith("unknown match") else None
        out.append(
            Finding(
                TOP_MATCH_ERROR, Severity.ERROR, source.path, line or target_line,
                f"target {target!r} matches no minion: {problem}", key=f"{target}|{matcher}",
            )
        )
    return out


def _record_error(tree: SourceTree, outcome: RenderOutcome, minion: MinionFixture, errors: dict[tuple[str, int, str], list[str]]) -> None:
    source = tree.source(outcome.path)
    line = source.clamp(outcome.error_line)
    errors.setdefault((source.path, line, outcome.error or "render failed"), []).append(minion.label)
