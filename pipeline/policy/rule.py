"""What a policy rule is: :class:`Rule` (a small class with a stable id and ``match_*`` hooks) and the
:class:`RuleContext` its hooks consult.

Kept apart from the engine so the rules (``pipeline.policy.rules``) and the engine both depend on this module
and never on each other: the engine is given its rules.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pipeline.findings import Severity
from pipeline.policy.allowlist import AllowList
from pipeline.policy.config import PolicyConfig
from pipeline.policy.functions import FunctionPolicy
from pipeline.policy.inventory import Kind
from pipeline.policy.model import Hit, PythonDoc, SlsDoc, StateDecl, TemplateDoc


@dataclass(frozen=True)
class RuleContext:
    """What rules may consult besides the document: the policy file, its globs and the allow-list."""

    policy: PolicyConfig
    functions: FunctionPolicy

    @classmethod
    def of(cls, policy: PolicyConfig, custom: Mapping[Kind, frozenset[str]] | None = None) -> RuleContext:
        """The context of a run: the policy file's globs, and the allow-list of the installed Salt plus the
        repository's own modules (``custom``, from :func:`pipeline.policy.inventory.custom_functions`)."""
        allow = AllowList.load().with_custom(custom or {})
        return cls(policy=policy, functions=FunctionPolicy.of(policy.forbidden_functions, allow))


class Rule:
    """Base of every policy rule. Subclasses set ``id`` and ``severity`` and override the hooks they need.

    Hooks yield :class:`Hit` objects and must not raise on odd input (the engine survives it anyway, but a
    crash costs the file every finding of that rule).
    """

    id: ClassVar[str]
    severity: ClassVar[Severity] = Severity.ERROR
    tags: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def description(cls) -> str:
        """The first line of the class docstring."""
        return (inspect.getdoc(cls) or "").splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def rationale_path(cls) -> Path:
        """The markdown file beside the rule's module that explains why the rule exists."""
        return Path(inspect.getfile(cls)).with_suffix(".md")

    @classmethod
    def fixtures_dir(cls) -> Path:
        """``rules/fixtures/<id>/`` with ``good/`` and ``bad/`` examples (bad lines carry ``expect: <id>``)."""
        return Path(inspect.getfile(cls)).parent / "fixtures" / cls.id

    def match_sls(self, doc: SlsDoc, ctx: RuleContext) -> Iterable[Hit]:
        """Called once per SLS document (its render pipe, its render-time calls)."""
        return ()

    def match_state(self, decl: StateDecl, ctx: RuleContext) -> Iterable[Hit]:
        """Called for every state declaration of every SLS document."""
        return ()

    def match_template(self, doc: TemplateDoc, ctx: RuleContext) -> Iterable[Hit]:
        """Called once per Jinja source (SLS rendered with jinja, ``.jinja``/``.j2`` files)."""
        return ()

    def match_python(self, doc: PythonDoc, ctx: RuleContext) -> Iterable[Hit]:
        """Called once per Python file (``_modules/``, ``_states/``, ``#!py`` SLS...)."""
        return ()
