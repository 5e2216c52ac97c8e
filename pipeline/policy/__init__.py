"""The MR policy: rules that block ``cmd.*`` and every way around it. See docs/policy.md.

:mod:`pipeline.policy.engine` runs the rules in :mod:`pipeline.policy.rules` on documents
(:mod:`pipeline.policy.model`); :mod:`pipeline.policy.config` reads ``salt/policy.yaml``. ``saltpipe policy
check`` is :mod:`pipeline.lint.policy_check`: lint's analysis with the policy alone, so the policy never imports
lint.
"""
