"""The context every command runs in: which checkout, which config file.

Built once by the CLI from ``--repo`` and ``--config``; stages receive the pieces they need (a
:class:`~pipeline.config.PipelineConfig`, a repository path), never this object's mutable internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import DEFAULT_CONFIG, PipelineConfig, load_config
from pipeline.errors import UsageError


def find_repo_root(start: Path) -> Path:
    """The top of the Git checkout containing ``start``; ``start`` itself when it is not in one."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return start


@dataclass
class AppContext:
    """Where saltpipe runs. ``config`` is loaded and validated on first use, then kept."""

    repo: Path
    config_path: Path
    _config: PipelineConfig | None = field(default=None, repr=False)
    #: ``--config`` was given (a missing file is then that option's mistake, not the checkout's).
    config_given: bool = False

    @classmethod
    def create(cls, repo: Path | None, config: Path | None) -> "AppContext":
        root = Path(repo).resolve() if repo else find_repo_root(Path.cwd())
        if not root.is_dir():
            raise UsageError(f"--repo {root}: not a directory", hint="point --repo at a saltpipe checkout")
        cfg = Path(config) if config else root / DEFAULT_CONFIG
        if not cfg.is_absolute():
            cfg = (Path.cwd() / cfg).resolve()
        return cls(repo=root, config_path=cfg, config_given=config is not None)

    @property
    def config(self) -> PipelineConfig:
        if self._config is None:
            if not self.config_given and not self.config_path.is_file():
                raise UsageError(
                    f"{self.repo}: not a saltpipe checkout (no {DEFAULT_CONFIG})",
                    hint="cd into a saltpipe checkout or pass --repo DIR (or --config FILE for another pipeline config); "
                    "in an existing Salt repository, `saltpipe init` writes a lint-only one (docs/adopting.md)",
                )
            self._config = load_config(self.config_path)
        return self._config

    def state_dir(self) -> Path:
        """Absolute state directory (journals, locks, releases)."""
        sd = self.config.state_dir
        return sd if sd.is_absolute() else self.repo / sd
