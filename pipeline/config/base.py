"""What every model of ``salt/pipeline.yaml`` shares: a frozen pydantic base that refuses unknown keys, and the
checks of ids and paths that several sections use."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict

#: An environment's name.
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
#: A Salt id (a minion's, a syndic's).
MINION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def absolute_path(value: Path | None, what: str) -> Path | None:
    """``value`` unchanged when it is absolute (or ``None``); else the error a field validator raises."""
    if value is not None and not value.is_absolute():
        raise ValueError(f"must be an absolute path ({what}), got {str(value)!r}")
    return value


def repo_relative(value: str, what: str) -> str:
    """A normalised POSIX path inside the repository (``.`` for the top)."""
    path = Path(value.strip() or ".")
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"must be a path inside the repository ({what}), got {value!r}")
    return path.as_posix()
