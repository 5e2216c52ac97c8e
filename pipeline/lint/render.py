"""Rendering SLS in-process with Salt's own renderer pipeline, one loader for the whole run.

:class:`SaltRenderer` builds Salt's minion opts (``file_client: local``, ``file_roots`` at the checked
``states/``), the execution-module loader, the renderer loader (with :class:`~pipeline.lint.guard.GuardedFunctions`
as the templates' ``salt``), a file client and the matchers once. :meth:`SaltRenderer.use` switches to another
fixture minion by updating grains, pillar and id *in place* - the loaders share those dicts - so nothing is
re-created per file or per minion. A render costs a few milliseconds; ``salt-call`` costs about a second.
"""

from __future__ import annotations

import copy
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import SaltError
from pipeline.lint.coverage import BranchTracker
from pipeline.lint.bounds import BoundedRenderers, RenderLimitExceeded, RenderLimits, RenderTimeout, template_line, time_limit
from pipeline.lint.fixtures import MinionFixture
from pipeline.lint.guard import GuardedFunctions
from pipeline.policy.model import RenderCall

_LINE_RE = re.compile(r"\bline (\d+)")


@dataclass(frozen=True)
class RenderOutcome:
    """One render of one SLS for one minion: the high data, or the error with its line."""

    sls: str
    path: Path
    data: Mapping[str, Any] | None
    error: str | None = None
    error_line: int | None = None
    calls: tuple[RenderCall, ...] = ()
    seconds: float = 0.0
    #: The render went past a bound of :class:`~pipeline.lint.bounds.RenderLimits` (``error`` says which).
    limited: bool = False

    @property
    def ok(self) -> bool:
        return self.data is not None


@dataclass
class SaltRenderer:
    """Salt's renderers over one file_roots directory. Use as a context manager (it owns a temp cachedir).

    ``renderers`` is the policy's allowed list (Salt's ``renderer_whitelist``); ``render_functions`` the
    functions templates may really call (see :mod:`pipeline.lint.guard`); ``display`` turns an absolute
    path into the path findings show.
    """

    file_root: Path
    renderers: tuple[str, ...]
    render_functions: tuple[str, ...]
    display: Callable[[Path], str]
    #: More directories of saltenv base after ``file_root``, in Salt's order (``layout.roots``).
    extra_roots: tuple[Path, ...] = ()
    limits: RenderLimits = field(default_factory=RenderLimits)
    #: Marks the Jinja branches each render reaches (:mod:`pipeline.lint.coverage`); None renders as written.
    tracker: BranchTracker | None = None
    #: Whether the last render ran under the time limit (False outside the main thread).
    timed: bool = field(default=True, repr=False)
    _opts: dict[str, Any] = field(default_factory=dict, repr=False)
    _cachedir: Path | None = field(default=None, repr=False)
    _loaders: list[Any] = field(default_factory=list, repr=False)
    _saved_level: int | None = field(default=None, repr=False)
    #: ``(target, match type, problem)`` of top file targets Salt cannot match (see :meth:`top_matches`).
    top_problems: set[tuple[str, str, str]] = field(default_factory=set, repr=False)

    def __enter__(self) -> SaltRenderer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Build opts, loaders and the file client (about half a second, once)."""
        try:
            import salt.config
            import salt.fileclient
            import salt.loader
            import salt.syspaths
        except ImportError as exc:  # pragma: no cover - salt is a dependency
            raise SaltError(f"cannot import Salt: {exc}", hint="install saltpipe's dependencies (pip install -e .)") from exc
        self._unpatch = _cache_jinja_compilation(self.tracker)
        salt_logger = logging.getLogger("salt")
        # Salt logs every render error at ERROR with a traceback; lint reports them as findings instead.
        self._saved_level = salt_logger.level
        salt_logger.setLevel(logging.CRITICAL + 10)
        self._cachedir = Path(tempfile.mkdtemp(prefix="saltpipe-lint-"))
        opts = salt.config.minion_config(None)
        opts.update(
            {
                "id": "saltpipe-lint",
                # minion_config(None) reads no file, so it leaves out what Salt derives from the file's path;
                # templates (and config.get) read config_dir as on a minion with the default layout.
                "config_dir": salt.syspaths.CONFIG_DIR,
                "file_client": "local",
                "master_type": "disable",
                "fileserver_backend": ["roots"],
                "file_roots": {"base": [str(self.file_root), *(str(r) for r in self.extra_roots)]},
                "pillar_roots": {"base": []},
                "cachedir": str(self._cachedir),
                "extension_modules": str(self._cachedir / "extmods"),
                "grains": {},
                "pillar": {},
                "renderer": "jinja|yaml",
                "renderer_whitelist": list(self.renderers),
                "renderer_blacklist": [],
                "state_events": False,
                "grains_cache": False,
            }
        )
        self._opts = opts
        self._context: dict[str, Any] = {}
        self._functions = salt.loader.minion_mods(opts, context=self._context)
        self.guard = GuardedFunctions(self._functions, self.render_functions, self._display_name)
        self._file_client = salt.fileclient.get_file_client(opts)
        self._renderers = salt.loader.render(opts, self.guard, file_client=self._file_client)
        self._matchers = salt.loader.matchers(opts)
        # salt.loader.render wraps its LazyLoader in a FilterDictWrapper; the opts live on the loader.
        from salt.loader.lazy import FilterDictWrapper

        # Every loader that renders or runs functions for templates (the execution modules' outer loader,
        # the inner one packed as their __salt__, the renderers). render() wraps its loader.
        self._loaders = [
            self._functions,
            self._functions.pack["__salt__"],
            self._renderers._dict if isinstance(self._renderers, FilterDictWrapper) else self._renderers,  # pylint: disable=protected-access
        ]
        self._minion_opts: dict[str, Any] = dict(opts)

    def _display_name(self, name: str) -> str:
        return self.display(self.file_root / name)

    def use(self, minion: MinionFixture) -> None:
        """Render as ``minion`` from now on.

        Salt's loaders deep-copy the opts they are built with, so each loader holds its own grains and pillar
        dicts; those are updated in place (modules see them through ``__grains__``/``__pillar__`` and
        ``__opts__``). Pillar is copied per minion so a template that mutates it cannot leak into the next
        minion. ``opts['id']`` of modules already loaded keeps the first minion's id; templates should use
        ``grains['id']``, which is right for every minion.
        """
        grains = copy.deepcopy(minion.grains)
        pillar = copy.deepcopy(minion.pillar)
        holders: list[dict[str, Any]] = [self._opts]
        for loader in self._loaders:
            holders.append(loader.opts)
            loader.opts["id"] = minion.minion_id
        for holder in holders:
            for key, value in (("grains", grains), ("pillar", pillar)):
                target = holder.get(key)
                if isinstance(target, dict) and target is not value:
                    target.clear()
                    target.update(copy.deepcopy(value) if key == "pillar" else value)
        self._context.clear()
        self._opts["id"] = minion.minion_id
        self._minion_opts = {**self._opts, "id": minion.minion_id, "grains": grains, "pillar": pillar}

    def render(self, path: Path, sls: str) -> RenderOutcome:
        """Render one SLS (or top.sls with ``sls=""``) through its shebang's render pipe, within :attr:`limits`."""
        from salt.exceptions import SaltRenderError

        self.guard.current = self.display(path)
        self.guard.calls = []
        started = time.perf_counter()
        try:
            size = path.stat().st_size
        except OSError as exc:
            return RenderOutcome(sls, path, None, f"cannot read the file: {exc.strerror}", 1)
        if self.limits.max_bytes and size > self.limits.max_bytes:
            return RenderOutcome(sls, path, None, f"{size:,} bytes, more than the {self.limits.max_bytes:,} lint renders: "
                                 "not rendered; split the file", 1, limited=True)
        try:
            with time_limit(self.limits.timeout) as self.timed:
                data = self._compile(path, sls)
        except RenderTimeout as exc:
            line = template_line(exc.__traceback__)
            return RenderOutcome(sls, path, None, f"the render did not finish in {self.limits.timeout:g}s (at line {line or '?'} "
                                 "when stopped): not rendered; look for a loop that does not end", line, tuple(self.guard.calls),
                                 time.perf_counter() - started, limited=True)
        except RenderLimitExceeded as exc:
            return RenderOutcome(sls, path, None, exc.message, exc.line, tuple(self.guard.calls), time.perf_counter() - started, limited=True)
        except SaltRenderError as exc:
            message, line = _describe(exc)
            return RenderOutcome(sls, path, None, message, getattr(exc, "line_num", None) or line, tuple(self.guard.calls), time.perf_counter() - started)
        except Exception as exc:  # pylint: disable=broad-except  # any template error is a finding
            message, line = _describe(exc)
            return RenderOutcome(sls, path, None, f"{type(exc).__name__}: {message}", line, tuple(self.guard.calls), time.perf_counter() - started)
        if data is None:
            data = {}
        if hasattr(data, "read"):  # a pipe that ends in a text renderer
            return RenderOutcome(sls, path, None, "the render pipe produced text, not data (does it end in yaml?)", 1, tuple(self.guard.calls))
        if not isinstance(data, Mapping):
            return RenderOutcome(sls, path, None, f"rendered to a {type(data).__name__}, not a mapping of state IDs", 1, tuple(self.guard.calls))
        return RenderOutcome(sls, path, data, calls=tuple(self.guard.calls), seconds=time.perf_counter() - started)

    def _compile(self, path: Path, sls: str) -> Any:
        import salt.template

        return salt.template.compile_template(
            str(path),
            BoundedRenderers(self._renderers, self.limits),
            self._opts["renderer"],
            self._opts["renderer_blacklist"],
            self._opts["renderer_whitelist"],
            saltenv="base",
            sls=sls,
            fileclient=self._file_client,
        )

    def top_matches(self, target: str, data: list[Any]) -> bool:
        """Whether the current minion matches a top file target, by Salt's own matchers (``compound`` unless
        the target's list says ``- match: <type>``, as in ``confirm_top``). A target Salt cannot match (an
        unknown ``match:`` type, a matcher that raises) matches nothing and is recorded in
        :attr:`top_problems` as ``(target, match type, what is wrong)`` for lint to report."""
        matcher = "compound"
        for item in data:
            if isinstance(item, Mapping) and "match" in item:
                matcher = str(item["match"])
        opts = self._minion_opts
        if f"{matcher}_match.match" not in self._matchers:
            known = ", ".join(sorted(k.removesuffix("_match.match") for k in self._matchers.keys() if k.endswith("_match.match")))
            self.top_problems.add((target, matcher, f"unknown match type {matcher!r} (Salt has: {known})"))
            return False
        try:
            if matcher == "nodegroup":
                return bool(self._matchers["nodegroup_match.match"](target, opts.get("nodegroups", {}), opts=opts, minion_id=opts["id"]))
            return bool(self._matchers[f"{matcher}_match.match"](target, opts=opts, minion_id=opts["id"]))
        except Exception as exc:  # pylint: disable=broad-except  # a bad target matches nothing; lint reports it
            self.top_problems.add((target, matcher, f"the {matcher} matcher cannot read this target ({type(exc).__name__}: {exc})"))
            return False

    def close(self) -> None:
        client = getattr(self, "_file_client", None)
        if client is not None:
            try:
                client.destroy()
            except Exception:  # pylint: disable=broad-except  # best effort cleanup
                pass
        if self._cachedir is not None:
            shutil.rmtree(self._cachedir, ignore_errors=True)
            self._cachedir = None
        if self._saved_level is not None:
            logging.getLogger("salt").setLevel(self._saved_level)
            self._saved_level = None
        unpatch = getattr(self, "_unpatch", None)
        if unpatch is not None:
            unpatch()
            self._unpatch = None


def _cache_jinja_compilation(tracker: BranchTracker | None = None) -> Callable[[], None]:
    """Memoize Jinja's template compilation while lint renders; returns the function that undoes it.

    Salt's Jinja renderer builds a new Environment for every render, so Jinja compiles the SLS and every
    ``map.jinja`` it imports again for each file and each fixture minion - most of a full run's time. The
    compiled code depends only on the source and the environment's syntax settings (identical for every Salt
    render), never on grains or pillar, so one compilation per distinct source serves the whole run.
    With a ``tracker``, a registered template is compiled with its branch markers (:mod:`pipeline.lint.coverage`).
    """
    import jinja2

    original = jinja2.Environment.compile
    cache: dict[tuple[Any, ...], Any] = {}

    def compile(self: jinja2.Environment, source: Any, name: str | None = None, filename: str | None = None, raw: bool = False, defer_init: bool = False) -> Any:  # pylint: disable=redefined-builtin
        if not isinstance(source, str):
            return original(self, source, name, filename, raw, defer_init)
        if tracker is not None:
            source = tracker.instrument(self, source)
        key = (
            type(self), source, name, filename, raw, defer_init,
            self.block_start_string, self.block_end_string, self.variable_start_string, self.variable_end_string,
            self.comment_start_string, self.comment_end_string, self.line_statement_prefix, self.line_comment_prefix,
            self.trim_blocks, self.lstrip_blocks, self.newline_sequence, self.keep_trailing_newline, self.optimized,
            tuple(sorted(self.extensions)), repr(self.autoescape), self.undefined, tuple(sorted(self.filters)), tuple(sorted(self.tests)),
        )
        if key not in cache:
            cache[key] = original(self, source, name, filename, raw, defer_init)
        return cache[key]

    jinja2.Environment.compile = compile  # type: ignore[method-assign]

    def undo() -> None:
        jinja2.Environment.compile = original  # type: ignore[method-assign]

    return undo


def _describe(exc: BaseException) -> tuple[str, int | None]:
    """The first meaningful line(s) of a Salt render error and the line it names, if any."""
    text = str(exc)
    # Salt appends a traceback to some errors; the message is before it.
    text = re.split(r"\n?Traceback \(most recent call last\)", text, maxsplit=1)[0]
    # Salt appends the template around the error after "\n---"; the first part is the message.
    head = text.split("\n---", 1)[0].strip()
    lines = [ln.strip() for ln in head.splitlines() if ln.strip()]
    found = _LINE_RE.findall(head)
    line = int(found[-1]) if found else None
    message = "; ".join(ln for ln in lines if not ln.startswith("in \"<unicode string>\"")) if lines else type(exc).__name__
    message = re.sub(r";?\s*line \d+$", "", message)
    return message[:400], line
