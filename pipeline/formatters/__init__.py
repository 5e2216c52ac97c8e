"""Formatters turn a :class:`~pipeline.findings.Report` into text for people or machines.

One module per format. A module registers its formatters by defining a module-level list
``FORMATTERS = [SomeFormatter]``; :func:`formatters` discovers them, so a new format (the MR-note markdown,
an HTML page) is one new file here and no edit elsewhere. Formatters never decide exit codes and never
look for findings themselves.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from pipeline.errors import UsageError
from pipeline.formatters.base import Formatter


@cache
def formatters() -> dict[str, type[Formatter]]:
    """Every registered formatter class by its :attr:`Formatter.name`."""
    found: dict[str, type[Formatter]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for cls in getattr(module, "FORMATTERS", ()):
            if cls.name in found:
                raise RuntimeError(f"two formatters are called {cls.name!r}: {found[cls.name]} and {cls}")
            found[cls.name] = cls
    return found


def names() -> list[str]:
    """Registered format names, sorted (for ``click.Choice``)."""
    return sorted(formatters())


def get_formatter(name: str) -> Formatter:
    """A new formatter instance for ``name``; :class:`UsageError` listing the known names if there is none."""
    try:
        return formatters()[name]()
    except KeyError:
        raise UsageError(f"unknown output format {name!r}", hint=f"use one of: {', '.join(names())}") from None


__all__ = ["Formatter", "formatters", "get_formatter", "names"]
