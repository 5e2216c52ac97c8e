"""saltpipe: a GitOps delivery pipeline for SaltStack.

Git is the only way in: merge-request checks, an approval verified through GitLab, an immutable release of
the merged commit, an atomic and attested sync of that release to every syndic master's file_roots, and a
canary-first rollout in gated batches with halt and rollback.
"""

__version__ = "0.1.0"
