"""Where the Salt tree lives in a repository, resolved once for lint, policy and releases.

:class:`pipeline.config.Layout` is what ``salt/pipeline.yaml`` says (``layout:``); :class:`RepoLayout` is the same
with the defaults applied and the exclusion patterns compiled. Lint and ``policy check`` scan the working tree
through it; ``release build`` walks a commit's trees through the same :meth:`RepoLayout.excludes` and root list,
so what lint checked is what a release holds.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import PurePosixPath

from pipeline.config import Layout

#: saltpipe's own files: never Salt content, even when a root is the repository's top or ``salt/``.
ALWAYS_EXCLUDED = ("salt/pipeline.yaml", "salt/policy.yaml", "salt/fixtures/")


@dataclass(frozen=True)
class RepoLayout:
    """Repository-relative POSIX paths: ``roots`` of saltenv ``base`` in Salt's order (``"."`` is the top),
    ``extensions`` explicitly listed ``_*`` directories (empty: every ``_*/`` at the top of the repository that
    no root already holds), ``exclude`` the patterns of :class:`~pipeline.config.Layout` plus saltpipe's own."""

    roots: tuple[str, ...] = ("states",)
    extensions: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ALWAYS_EXCLUDED

    @classmethod
    def of(cls, layout: Layout | None) -> RepoLayout:
        layout = layout or Layout()
        return cls(layout.file_roots(), layout.extensions, ALWAYS_EXCLUDED + tuple(layout.exclude))

    @property
    def states_root(self) -> str:
        return self.roots[0]

    def excludes(self, rel: str) -> bool:
        """Whether the repository path ``rel`` (a file or directory) is kept out of lint and releases.

        ``dir/`` matches that directory and everything below it; a pattern with a ``/`` is a glob on the whole
        path; one without is a glob on the whole path or on any single component (``*.md``, ``.github``)."""
        rel = PurePosixPath(rel).as_posix()
        parts = rel.split("/")
        for pattern in self.exclude:
            if pattern.endswith("/"):
                base = pattern.rstrip("/")
                if rel == base or rel.startswith(base + "/") or fnmatch.fnmatchcase(rel, base) or any(
                    fnmatch.fnmatchcase("/".join(parts[: i + 1]), base) for i in range(len(parts))
                ):
                    return True
            elif fnmatch.fnmatchcase(rel, pattern):
                return True
            elif "/" not in pattern and any(fnmatch.fnmatchcase(p, pattern) for p in parts):
                return True
        return False

    def root_holds(self, rel: str) -> bool:
        """Whether ``rel`` is inside one of the roots (the top ``"."`` holds everything)."""
        return any(r == "." or rel == r or rel.startswith(r + "/") for r in self.roots)

    def auto_extensions(self, top_names: list[str]) -> tuple[str, ...]:
        """The extension directories to release: the listed ones, else the ``_*`` names among ``top_names``
        (the repository's top-level directories) that no root holds and no pattern excludes."""
        if self.extensions:
            return self.extensions
        return tuple(n for n in sorted(top_names) if n.startswith("_") and n != "__pycache__" and not self.root_holds(n) and not self.excludes(n))
