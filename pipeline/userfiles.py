"""Writing a file the user asked for (a report, a config, fixtures): one place that says what failed."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import ConfigError


def write_file(path: Path, text: str, *, what: str = "", hint: str | None = None) -> None:
    """Write ``text`` (UTF-8) to ``path``, creating its directories; an OS error is a :class:`ConfigError`
    naming the file (``cannot write[ what]: <reason>``) with ``hint``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write{' ' + what if what else ''}: {exc.strerror}", path=path, hint=hint) from exc
