"""Click options that many commands declare alike: paths given on the command line, and ``--format text|json``.

One place says what such an option is (a :class:`~pathlib.Path`, a file or a directory, None when not given);
each command still words its own help. Outside ``commands/`` so that :mod:`pipeline.cli` may use it without
importing a command module at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

#: ``--format`` of the commands that print text or JSON (into the parameter ``fmt``).
text_or_json = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)


def file_option(*decls: str, help: str, exists: bool = False, **attrs: Any) -> Any:  # pylint: disable=redefined-builtin
    """An option naming a file (``exists``: it must be there), as a :class:`~pathlib.Path`; ``None`` when not
    given unless ``attrs`` sets another ``default``. ``attrs`` go to :func:`click.option` as they are."""
    attrs.setdefault("default", None)
    return click.option(*decls, type=click.Path(dir_okay=False, exists=exists, path_type=Path), help=help, **attrs)


def dir_option(*decls: str, help: str, exists: bool = False, **attrs: Any) -> Any:  # pylint: disable=redefined-builtin
    """Like :func:`file_option`, for an option naming a directory."""
    attrs.setdefault("default", None)
    return click.option(*decls, type=click.Path(file_okay=False, exists=exists, path_type=Path), help=help, **attrs)
