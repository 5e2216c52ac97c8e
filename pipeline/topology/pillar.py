"""The local topology's pillar: each environment's fixture pillar, sandboxed into each minion's own directory.

Every syndic master serves ``<syndic>/pillar``: a ``top.sls`` giving each of its minions one SLS of its own.
That SLS is the environment's fixture pillar (``salt/fixtures/<env>/pillar.yaml``, what lint renders against)
with the sandbox switches of the content API on top (docs/topology.md): each formula's ``root`` is the
minion's sandbox directory and ``manage_packages`` / ``manage_services`` are off, and every path the ``ops_*``
modules write is inside the sandbox. So applying any formula on a local minion touches nothing outside
``<workdir>/<minion>/sandbox`` and installs or restarts nothing on the host.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import PipelineConfig
from pipeline.errors import ConfigError
from pipeline.topology.handles import MinionHandle


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``top`` merged in; nested mappings merge, anything else in ``top`` wins."""
    out = copy.deepcopy(dict(base))
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def formulas(repo: Path) -> tuple[str, ...]:
    """Names of the formulas in ``repo/states`` (directories holding at least one ``.sls``)."""
    states = repo / "states"
    if not states.is_dir():
        return ()
    return tuple(sorted(d.name for d in states.iterdir() if d.is_dir() and any(d.rglob("*.sls"))))


#: The stand-in release artefact of the ``app`` formula in a sandbox: no download from an artefact repository.
SANDBOX_ARTIFACT = "#!/bin/sh\n# saltpipe local topology: stand-in release artefact\n"
#: A patch set every Debian-like host satisfies (versions are minimums), made active in a sandbox so the
#: ``patching`` formula runs its whole workflow and changes nothing.
SANDBOX_PATCHSET = {"sandbox": {"bash": "1.0"}}


def sandbox_overlay(sandbox: Path, formula_names: Iterable[str]) -> dict[str, Any]:
    """The pillar that confines the bundled content to ``sandbox``: docs/formulas.md, "Sandbox switches".

    Every formula writes below ``<formula>:root`` and manages no packages or services (accounts and file
    owners follow ``root``); the ``ops_*`` modules keep their drain flags below it too.
    """
    overlay: dict[str, Any] = {
        name: {"root": str(sandbox), "manage_packages": False, "manage_services": False} for name in formula_names
    }
    return deep_merge(
        overlay,
        {
            "app": {"artifact": {"contents": SANDBOX_ARTIFACT}},
            "ops": {
                "lb": {"drain_dir": str(sandbox / "etc" / "ops" / "lb-drain")},
                "patch": {"active_set": "sandbox", "sets": SANDBOX_PATCHSET},
            },
        },
    )


def fixture_pillar(config: PipelineConfig, env: str, repo: Path) -> dict[str, Any]:
    """The environment's fixture pillar, ``{}`` when it has none."""
    path = config.fixtures_for(env, repo).pillar
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("fixture pillar must be a mapping", path=path, line=1, hint="see docs/formulas.md")
    return data


def minion_pillar(minion: MinionHandle, config: PipelineConfig, repo: Path) -> dict[str, Any]:
    """The whole pillar one local minion gets."""
    return deep_merge(fixture_pillar(config, minion.env, repo), sandbox_overlay(minion.sandbox, formulas(repo)))


def _sls_name(minion_id: str) -> str:
    # Dots separate SLS path components; minion ids here have none (spec), dashes are fine.
    return f"saltpipe_local.{minion_id}"


def _overrides_name(minion_id: str) -> str:
    return f"saltpipe_overrides.{minion_id}"


def overrides_file(pillar_dir: Path, minion_id: str) -> Path:
    """The per-minion pillar file merged last (empty by default); see :func:`write_overrides`."""
    return pillar_dir / "saltpipe_overrides" / f"{minion_id}.sls"


def write_overrides(pillar_dir: Path, minion_id: str, data: Mapping[str, Any]) -> None:
    """Replace one minion's pillar overrides (merged over its generated pillar by Salt's ``smart`` merging).

    The minion sees them after ``saltutil.refresh_pillar`` (or any state run, which compiles pillar afresh).
    """
    path = overrides_file(pillar_dir, minion_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=False) if data else "{}\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_local_pillar(pillar_dir: Path, minions: tuple[MinionHandle, ...], *, config: PipelineConfig, repo: Path) -> None:
    """Write ``top.sls``, one generated SLS per minion and its (kept, initially empty) overrides SLS into a
    syndic master's ``pillar_dir``."""
    (pillar_dir / "saltpipe_local").mkdir(parents=True, exist_ok=True)
    top = {"base": {m.id: [_sls_name(m.id), _overrides_name(m.id)] for m in minions}}
    header = "# Written by `saltpipe topology up` (pipeline/topology/pillar.py); regenerated on every up.\n"
    (pillar_dir / "top.sls").write_text(header + yaml.safe_dump(top, sort_keys=False), encoding="utf-8")
    for minion in minions:
        data = minion_pillar(minion, config, repo)
        (pillar_dir / "saltpipe_local" / f"{minion.id}.sls").write_text(
            header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False), encoding="utf-8"
        )
        if not overrides_file(pillar_dir, minion.id).exists():
            write_overrides(pillar_dir, minion.id, {})
