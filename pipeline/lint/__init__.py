"""The MR static checks (``saltpipe lint``): pylint with saltpylint, every SLS rendered by Salt for every
fixture minion with structure checks, and the policy (:mod:`pipeline.policy`). See docs/lint.md.
:mod:`pipeline.lint.policy_check` is ``saltpipe policy check``: the same analysis, the policy alone."""

from pipeline.lint.run import LintOptions, LintResult, known_rule_ids, run_lint

__all__ = ["LintOptions", "LintResult", "known_rule_ids", "run_lint"]
