"""State declarations out of an SLS: from Salt's rendered high data, or from the template text.

Rendered data is exact (loops unrolled, Jinja evaluated with the fixture grains and pillar). When rendering
fails or is refused (a renderer the policy does not allow, a template with a sandbox escape), the policy still
has to see what the file declares, so :func:`states_from_text` reads the template text: Jinja tags are blanked
out (line numbers kept) and the rest is read as YAML; if even that fails, a line scanner picks out state
function keys (``cmd.run:``, ``cmd:`` + ``- run``) and the arguments rules care about.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from pipeline.policy.model import Origin, SourceText, StateDecl

#: Top-level keys of an SLS that are not state IDs.
RESERVED_KEYS = frozenset({"include", "exclude", "extend"})
#: What a ``{{ ... }}`` expression becomes in template text read without rendering.
JINJA_VALUE = "__jinja__"

_FUN_KEY_RE = re.compile(r"^(?P<indent>\s*)(?:-\s+)?['\"]?(?P<mod>[a-z_][a-z0-9_]*)\.(?P<fun>[a-z_][a-z0-9_]*)['\"]?\s*:")
_MOD_KEY_RE = re.compile(r"^(?P<indent>\s*)(?P<mod>[a-z_][a-z0-9_]*)\s*:\s*(?:#.*)?$")
_BARE_ITEM_RE = re.compile(r"^\s*-\s+(?P<word>[a-z_][a-z0-9_]*)\s*(?:#.*)?$")
_ARG_RE = re.compile(r"^\s*-?\s*(?P<key>name|onlyif|unless|check_cmd|template|function|fun)\s*:\s*(?P<value>.*?)\s*$")
_ID_RE = re.compile(r"^(?P<indent>\s*)(?P<id>[^\s#-][^#]*?)\s*:\s*(?:#.*)?$")
_JINJA_TAG_RE = re.compile(r"\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_JINJA_EXPR_RE = re.compile(r"\{\{.*?\}\}", re.DOTALL)


def state_body(body: Any) -> Any:
    """A state ID's body as Salt's state compiler reads it: the short form ``ID: pkg.installed`` (a bare
    ``module.function`` string) is ``{pkg: [installed]}``; anything else is returned as it is."""
    if isinstance(body, str) and "." in body:
        module, _, function = body.partition(".")
        return {module: [function]}
    return body


def states_from_high(
    data: Mapping[str, Any], source: SourceText, sls: str | None, origin: Origin = "rendered"
) -> list[StateDecl]:
    """Every state declaration of one rendered SLS (``extend:`` entries included, ``in_extend`` set)."""
    out: list[StateDecl] = []
    for state_id, body in data.items():
        if not isinstance(state_id, str) or state_id.startswith("__"):
            continue
        if state_id == "extend" and isinstance(body, Mapping):
            extend_line = source.locate_key("extend") or 0
            for ext_id, ext_body in body.items():
                if isinstance(ext_body, Mapping):
                    line = source.locate_key(str(ext_id), after=extend_line) or extend_line
                    out += _decls(str(ext_id), ext_body, source, sls, origin, line, in_extend=True)
            continue
        body = state_body(body)
        if state_id in RESERVED_KEYS or not isinstance(body, Mapping):
            continue
        out += _decls(state_id, body, source, sls, origin, None, in_extend=False)
    return out


def _decls(
    state_id: str,
    body: Mapping[str, Any],
    source: SourceText,
    sls: str | None,
    origin: Origin,
    line: int | None,
    *,
    in_extend: bool,
) -> list[StateDecl]:
    out = []
    id_line = line if line is not None else source.locate_key(state_id)
    for key, value in body.items():
        if not isinstance(key, str) or key.startswith("__"):
            continue
        module, _, function = key.partition(".")
        args: dict[str, Any] = {}
        positional: list[str] = []
        for item in value if isinstance(value, list) else ():
            if isinstance(item, str):
                positional.append(item)
            elif isinstance(item, Mapping):
                for k, v in item.items():
                    k = str(k)
                    if origin == "text" and k in args and k in SHELL_ARGS:
                        # onlyif in two Jinja branches: both are conditions the policy must see.
                        v = _as_list(args[k]) + _as_list(v)
                    args[k] = v
        if not function and positional:
            function = positional[0]
        decl_line = id_line or source.find(f"{module}.{function}" if function else f"{module}:") or 1
        out.append(
            StateDecl(
                path=source.path,
                state_id=state_id,
                module=module,
                function=function or None,
                args=args,
                positional=tuple(positional),
                line=source.clamp(decl_line),
                origin=origin,
                sls=sls,
                in_extend=in_extend,
                source=source,
            )
        )
    return out


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def blank_jinja(text: str) -> str:
    """``text`` with ``{% %}`` and ``{# #}`` blanked and ``{{ }}`` replaced by :data:`JINJA_VALUE`, newlines
    kept."""
    text = _JINJA_TAG_RE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return _JINJA_EXPR_RE.sub(lambda m: JINJA_VALUE + "\n" * m.group(0).count("\n"), text)


def _has_jinja(value: Any) -> bool:
    if isinstance(value, str):
        return JINJA_VALUE in value
    if isinstance(value, Mapping):
        return any(_has_jinja(k) or _has_jinja(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_jinja(v) for v in value)
    return False


#: Arguments Salt runs as shell commands when they are strings (Salt 3006: ``onlyif``/``unless`` strings go to
#: cmd.retcode; a list of ``fun:`` mappings calls modules instead).
SHELL_ARGS = ("onlyif", "unless", "check_cmd")


def _scrub(decl: StateDecl) -> StateDecl:
    """Drop arguments whose value comes from a Jinja expression: unrendered, nobody knows what they hold.
    Shell arguments with literal text stay: ``onlyif: test -f {{ path }}`` is a shell command whatever the
    expression renders (a value that is one expression, ``{{ checks | json }}``, may be the function form)."""

    def keep(key: str, value: Any) -> bool:
        return not _has_jinja(value) or (key in SHELL_ARGS and isinstance(value, str) and value.strip() != JINJA_VALUE)

    if all(keep(k, v) for k, v in decl.args.items()):
        return decl
    from dataclasses import replace

    return replace(decl, args={k: v for k, v in decl.args.items() if keep(k, v)})


def states_from_text(source: SourceText, sls: str | None) -> list[StateDecl]:
    """Best-effort declarations from unrendered template text (``origin="text"``).

    Every state written in the template is seen, in every Jinja branch, but arguments whose value is a Jinja
    expression are left out (their value is unknown), so rules judge only what the text says literally."""
    blanked = blank_jinja(source.text)
    decls = []
    for state_id, body, line in _top_pairs(blanked) or ():
        # Each occurrence of a state ID on its own: the same ID in two Jinja branches is two declarations.
        decls += states_from_high({state_id: body}, source, sls, origin="text") if state_id == "extend" else (
            _decls(state_id, state_body(body), source, sls, "text", line, in_extend=False)
            if isinstance(state_body(body), Mapping) and state_id not in RESERVED_KEYS else []
        )
    if decls:
        return [_scrub(d) for d in decls]
    return [_scrub(d) for d in _scan_lines(source, blanked, sls)]


def _top_pairs(text: str) -> list[tuple[str, Any, int]] | None:
    """``(key, value, line)`` of each top-level key of the YAML ``text``, duplicates kept (``yaml.safe_load``
    keeps the last of equal keys only); None when it is not a YAML mapping."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if not isinstance(node, yaml.MappingNode):
            return None
        loader.flatten_mapping(node)
        return [
            (str(loader.construct_object(k, deep=True)), loader.construct_object(v, deep=True), k.start_mark.line + 1)
            for k, v in node.value
        ]
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()


def _scan_lines(source: SourceText, blanked: str, sls: str | None) -> Iterator[StateDecl]:
    """The last resort: state function keys found line by line, with the ID above them."""
    lines = blanked.splitlines()
    for number, line in enumerate(lines, start=1):
        module = function = None
        indent = 0
        match = _FUN_KEY_RE.match(line)
        if match:
            module, function = match.group("mod"), match.group("fun")
            indent = len(match.group("indent"))
        else:
            match = _MOD_KEY_RE.match(line)
            if match and number < len(lines):
                following = next((ln for ln in lines[number:] if ln.strip()), "")
                item = _BARE_ITEM_RE.match(following)
                if item:
                    module, function = match.group("mod"), item.group("word")
                    indent = len(match.group("indent"))
        if module is None or indent == 0:
            continue
        state_id, id_line = _enclosing_id(lines, number, indent)
        args = _scan_args(lines, number, indent)
        yield StateDecl(
            path=source.path,
            state_id=state_id,
            module=module,
            function=function,
            args=args,
            line=id_line,
            origin="text",
            sls=sls,
            source=source,
        )


def _enclosing_id(lines: list[str], number: int, indent: int) -> tuple[str, int]:
    for back in range(number - 1, 0, -1):
        match = _ID_RE.match(lines[back - 1])
        if match and len(match.group("indent")) < indent:
            return match.group("id").strip("'\""), back
    return f"(line {number})", number


def _scan_args(lines: list[str], number: int, indent: int) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for line in lines[number:]:
        if not line.strip():
            continue
        if len(line) - len(line.lstrip()) <= indent and not line.lstrip().startswith("-"):
            break
        match = _ARG_RE.match(line)
        if match and match.group("key") not in args:
            value = match.group("value").strip("'\"")
            args[match.group("key")] = value
    return args
