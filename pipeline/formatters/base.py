"""The formatter interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pipeline.findings import Report


class Formatter(ABC):
    """Renders a :class:`Report` as one string.

    ``name`` is the ``--format`` value; ``suffix`` a sensible file extension for ``--output``. Implementations
    are pure: same report, same output (no timestamps unless the report carries them).
    """

    name: ClassVar[str]
    suffix: ClassVar[str] = ".txt"

    @abstractmethod
    def format(self, report: Report) -> str:
        """The whole output, ending with a newline."""
