"""The allow-list: the class of every Salt function, from ``data/salt-<major>.functions.yaml``.

Each function the installed Salt ships is classified once, in data (``allowed``, ``lookup``, ``dispatcher``,
``denied-executes-process``, ``denied-loads-code``), by the reviewed rules of ``data/classification.yaml``
(:mod:`pipeline.policy.inventory` regenerates the data). A function the data does not name is
*unclassified*: denied (fail closed), unless the repository defines it in its own ``_modules``/``_states``/
``_runners`` (reviewed code the Python rules check).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from pipeline.policy.inventory import CUSTOM_DIRS, KINDS, UNCLASSIFIED, Kind, load_yaml, data_file

DENIED = frozenset({"denied-executes-process", "denied-loads-code"})


@dataclass(frozen=True)
class Verdict:
    """What the allow-list says of one function: its class (None when unclassified), group and reason."""

    cls: str | None
    group: str
    reason: str

    @property
    def denied(self) -> bool:
        return self.cls is None or self.cls in DENIED


@dataclass(frozen=True)
class AllowList:
    """``(kind, module.function) -> group`` and each group's class and reason, for one Salt version."""

    salt_version: str
    table: Mapping[tuple[str, str], str] = field(repr=False)
    groups: Mapping[str, tuple[str, str]] = field(repr=False)
    custom: Mapping[str, frozenset[str]] = field(default_factory=dict, repr=False)
    denied_modules: frozenset[tuple[str, str]] = field(default=frozenset(), repr=False)

    @classmethod
    def load(cls, path: Path | None = None) -> AllowList:
        """The data file of the installed Salt's release line (read once per process)."""
        return _load(str(path) if path else None)

    def with_custom(self, custom: Mapping[Kind, frozenset[str]]) -> AllowList:
        """This list plus the repository's own modules (allowed where Salt's data does not classify them)."""
        return AllowList(self.salt_version, self.table, self.groups, dict(custom), self.denied_modules)

    def verdict(self, function: str, kind: Kind = "execution") -> Verdict:
        group = self.table.get((kind, function))
        if group is not None:
            cls, reason = self.groups[group]
            return Verdict(cls, group, reason)
        if function in self.custom.get(kind, ()):
            return Verdict("allowed", "custom", f"defined in the repository's {CUSTOM_DIRS[kind]}/")
        return Verdict(
            None,
            UNCLASSIFIED,
            f"unclassified: not a Salt {self.salt_version} {kind} function the policy classifies, nor one of "
            f"the repository's {CUSTOM_DIRS[kind]}/; a Salt function is classified in "
            "pipeline/policy/data/classification.yaml (then `python -m pipeline.policy.inventory --write`)",
        )

    def denied_in_module(self, module: str, kind: Kind = "execution") -> bool:
        """True when some function of ``module`` is denied (``salt.cmd`` handed to a template as an object)."""
        return (kind, module) in self.denied_modules


@cache
def _load(path: str | None) -> AllowList:
    import salt.version

    data = load_yaml(Path(path) if path else data_file(salt.version.__version__))
    table: dict[tuple[str, str], str] = {}
    groups: dict[str, tuple[str, str]] = {}
    for gid, body in data["groups"].items():
        groups[gid] = (body["class"], body["reason"])
        for kind in KINDS:
            for module, names in (body.get(kind) or {}).items():
                for name in names:
                    table[(kind, f"{module}.{name}")] = gid
    denied = frozenset((k, name.split(".", 1)[0]) for (k, name), g in table.items() if groups[g][0] in DENIED)
    return AllowList(str(data["salt_version"]), table, groups, {}, denied)
