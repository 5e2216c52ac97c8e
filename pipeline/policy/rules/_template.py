""":class:`TemplateRule`, the base of the ``jinja-*`` rules (not a rule module: the leading underscore keeps it
out of discovery)."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.policy.model import Hit, TemplateDoc
from pipeline.policy.rule import Rule, RuleContext


class TemplateRule(Rule):
    """A rule on Jinja sources that reads the parsed template where it parses and its text where it does not:
    :meth:`match_jinja` is called for a template whose :attr:`TemplateDoc.jinja` AST is there,
    :meth:`match_text` for one that does not parse (:meth:`TemplateDoc.text_matches` helps); a template that
    does not parse must not hide what its text shows."""

    def match_template(self, doc: TemplateDoc, ctx: RuleContext) -> Iterable[Hit]:
        if doc.jinja is None:
            return self.match_text(doc, ctx)
        return self.match_jinja(doc, ctx)

    def match_jinja(self, doc: TemplateDoc, ctx: RuleContext) -> Iterable[Hit]:
        """Called for a template that parses (``doc.jinja`` is its AST)."""
        return ()

    def match_text(self, doc: TemplateDoc, ctx: RuleContext) -> Iterable[Hit]:
        """Called for a template that does not parse, to check its ``{{ }}``/``{% %}`` text."""
        return ()
