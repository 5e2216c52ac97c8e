"""The one exception hierarchy of saltpipe.

Findings and gate decisions are data (see :mod:`pipeline.findings`); exceptions are for things that stop a
stage from running at all: a bad config file, a missing Git revision, an unreachable syndic. Every error
carries a message that tells the user what to do, and maps onto a CLI exit code:

* ``0`` - ok
* ``1`` - findings, or a failed gate (not raised: the stage returns a result that says so)
* ``2`` - usage, configuration or infrastructure error (everything in this module)
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


class SaltpipeError(Exception):
    """Root of every error saltpipe raises on purpose.

    ``hint`` says what the user should do about it; the CLI prints it after the message.
    """

    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(SaltpipeError):
    """The command line asks for something that cannot be done (unknown environment, bad option value)."""


class ConfigError(SaltpipeError):
    """A configuration file is missing, unparsable or invalid.

    ``path``, ``line`` and ``key`` locate the problem so the message can name them.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        self.key = key
        where = ""
        if self.path is not None:
            where = str(self.path)
            if line is not None:
                where += f":{line}"
            where += ": "
        if key:
            where += f"{key}: "
        super().__init__(f"{where}{message}", hint=hint)


class GitError(SaltpipeError):
    """The repository or a revision in it cannot be read."""


class InfrastructureError(SaltpipeError):
    """Something saltpipe talks to (a Salt daemon, a syndic's file_roots, GitLab) failed or cannot be reached."""


class CheckToolError(InfrastructureError):
    """A check could not run (its tool is not installed or crashed): the check fails closed, never passes."""


class SaltError(InfrastructureError):
    """A Salt daemon or client call failed in a way that is not a per-minion result."""


class TopologyError(InfrastructureError):
    """The local topology could not be started, checked or stopped."""


class SyncError(InfrastructureError):
    """A release could not be staged, verified or switched on a syndic."""


class LockError(SaltpipeError):
    """Another sync or rollout holds the environment's lock."""


class GitLabError(InfrastructureError):
    """GitLab could not be reached, refused the token, or answered an error (the review gate fails closed)."""
