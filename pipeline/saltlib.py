"""Import Salt lazily and politely.

Salt is heavy to import (about a second), so saltpipe imports it only where a Salt API is called. Importing
any Salt module replaces ``sys.excepthook`` with Salt's own handler, which logs every uncaught exception a
second time; saltpipe's CLI reports its errors itself, so the previous hook is put back. Salt also installs a
"deferred" stderr log handler that only flushes at interpreter exit (when pytest, say, has already closed the
stream); it is removed so Salt's log records go to whatever logging the host process configured.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def import_salt(name: str) -> ModuleType:
    """``importlib.import_module(name)`` for a Salt module, keeping ``sys.excepthook`` as it was."""
    hook = sys.excepthook
    try:
        module = importlib.import_module(name)
        impl = importlib.import_module("salt._logging.impl")
        impl.shutdown_temp_handler()
        return module
    finally:
        sys.excepthook = hook
