"""Import Salt lazily and politely.

Salt is heavy to import (about a second), so saltpipe imports it only where a Salt API is called. Importing
any Salt module replaces ``sys.excepthook`` with Salt's own handler, which logs every uncaught exception a
second time; saltpipe's CLI reports its errors itself, so the previous hook is put back.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def import_salt(name: str) -> ModuleType:
    """``importlib.import_module(name)`` for a Salt module, keeping ``sys.excepthook`` as it was."""
    hook = sys.excepthook
    try:
        return importlib.import_module(name)
    finally:
        sys.excepthook = hook
