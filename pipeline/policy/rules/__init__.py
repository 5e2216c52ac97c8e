"""The policy rules, one small class per module, each with its rationale (``<module>.md``) beside it and its
good/bad fixtures in ``fixtures/<rule id>/``.

Rule ids are stable: never renamed, only deprecated. :func:`all_rules` discovers every module here (modules
whose name starts with ``_`` are helpers) and checks that each defines exactly one rule with a unique id.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import cache

from pipeline.policy.rule import Rule

_ID_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@cache
def all_rules() -> tuple[type[Rule], ...]:
    """Every rule class, sorted by id."""
    found: dict[str, type[Rule]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        classes = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, Rule) and obj is not Rule and obj.__module__ == module.__name__
        ]
        if len(classes) != 1:
            raise RuntimeError(f"{module.__name__} must define exactly one Rule subclass, found {len(classes)}")
        cls = classes[0]
        if not _ID_RE.match(getattr(cls, "id", "")):
            raise RuntimeError(f"{cls.__name__}.id must be a kebab-case id, got {getattr(cls, 'id', None)!r}")
        if cls.id in found:
            raise RuntimeError(f"rule id {cls.id!r} is used by {found[cls.id].__name__} and {cls.__name__}")
        if not cls.description():
            raise RuntimeError(f"{cls.__name__} needs a one-line docstring")
        found[cls.id] = cls
    return tuple(found[k] for k in sorted(found))


def rule_ids() -> list[str]:
    return [cls.id for cls in all_rules()]
