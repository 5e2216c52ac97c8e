"""A larger local fleet for the benchmark: ``saltpipe topology up --minions N [--syndics S]``.

The default topology (``salt/daemons/local-topology.yaml``, 3 syndics, 8 minions) is what the tests and the demo
run; this builds a bigger one from it, in the work directory, without touching ``salt/``:

* ``<workdir>/scaled/pipeline.yaml`` - ``salt/pipeline.yaml`` with its *last* environment (``production``, where
  rollouts are measured) given more syndics, copies of its last one named ``syndic-prod-c``, ``-d``, ... until
  the topology has ``S`` syndics in all. Every other environment keeps its syndics.
* ``<workdir>/scaled/local-topology.yaml`` - the ``N`` minions spread evenly over all ``S`` syndics (each gets
  ``N // S`` or one more, the first syndics the extra ones). A syndic of the default spec keeps its minions first
  (``test-web-1`` stays ``test``'s canary) and is filled up to its share with new ones (``prod-web-07``,
  ``prod-app-08``, ... numbered per environment after its default minions, roles ``web`` and ``app`` alternating).

Both files are then loaded and checked exactly as ``salt/``'s are (:func:`~pipeline.topology.spec.load_spec`), and
the minions are rendered light (``light`` in ``salt/daemons/minion.conf.j2``: jobs in threads, no GPU grains, no
mine), so that dozens fit on a small host (docs/topology.md, "A larger fleet").
"""

from __future__ import annotations

import copy
import string
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import UsageError

#: Syndics of the larger fleet unless ``--syndics`` says otherwise.
DEFAULT_SYNDICS = 4


def ready_timeout(minions: int | None) -> float:
    """Seconds ``topology up`` gives every minion to answer by default: 60, and 3 more per minion of a larger
    fleet (``minions``; None: the default topology). 80 minions took 191 s on 2 cores (docs/topology.md)."""
    return 60.0 + 3.0 * (minions or 0)


def shares(minions: int, syndics: int) -> list[int]:
    """How many of ``minions`` each of ``syndics`` syndics gets: an even spread, the first ones the remainder.

    :class:`UsageError` (exit 2) when either is below 1 or a syndic would get no minion."""
    if minions < 1 or syndics < 1:
        raise UsageError(
            f"--minions {minions} --syndics {syndics}: both must be at least 1", hint="e.g. --minions 40 --syndics 4"
        )
    if minions < syndics:
        raise UsageError(
            f"--minions {minions} is fewer than --syndics {syndics}: every syndic needs at least one minion",
            hint=f"use --minions {syndics} or more, or fewer syndics",
        )
    each, extra = divmod(minions, syndics)
    return [each + (k < extra) for k in range(syndics)]


def _grow(config: dict[str, Any], syndics: int, config_file: Path) -> list[tuple[str, str]]:
    """Add syndics to the last environment until there are ``syndics``; (syndic, environment) in config order."""
    envs = config["environments"]
    present = sum(len(e["syndics"]) for e in envs.values())
    if syndics < present:
        raise UsageError(
            f"--syndics {syndics}: {config_file} already has {present} syndics, the fewest this topology can have",
            hint=f"use --syndics {present} or more",
        )
    grown = envs[list(envs)[-1]]["syndics"]
    last = grown[-1]["name"]
    stem = last.rsplit("-", 1)[0] if "-" in last else last
    for suffix in string.ascii_lowercase[len(grown):][: syndics - present]:
        extra = copy.deepcopy(grown[-1])
        extra["name"] = f"{stem}-{suffix}"
        grown.append(extra)
    if sum(len(e["syndics"]) for e in envs.values()) < syndics:
        raise UsageError(f"--syndics {syndics}: more than this topology can name", hint="use fewer syndics")
    return [(s["name"], name) for name, env in envs.items() for s in env["syndics"]]


def scaled_files(
    workdir: Path, config_file: Path, spec_file: Path, *, minions: int, syndics: int = DEFAULT_SYNDICS
) -> tuple[Path, Path]:
    """Write the scaled ``pipeline.yaml`` and ``local-topology.yaml`` below ``workdir/scaled``; return their paths.

    :class:`UsageError` when ``minions`` or ``syndics`` is below 1, ``minions`` is fewer than ``syndics``, or
    ``syndics`` is fewer than the config already has.
    """
    share = shares(minions, syndics)
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    spec = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    layout = _grow(config, syndics, config_file)

    fleet: dict[str, dict[str, Any]] = {}
    taken = {m for entry in spec["syndics"].values() for m in entry["minions"]}
    # New ids are numbered per environment after its default minions (test-web-1, test-app-1, then test-web-03).
    counters: dict[str, int] = {}
    for name, env in layout:
        counters[env] = counters.get(env, 0) + len(spec["syndics"].get(name, {}).get("minions", {}))
    width = max(2, len(str(minions)))
    for (name, env), count in zip(layout, share):
        default = spec["syndics"].get(name, {})
        # A syndic of the default spec keeps its datacenter; an added one gets its own (dc-c, dc-d, ...).
        kept = dict(list(default.get("minions", {}).items())[:count])
        while len(kept) < count:
            counters[env] += 1
            role = "web" if counters[env] % 2 else "app"
            mid = f"{env[:4]}-{role}-{counters[env]:0{width}d}"
            if mid not in taken:
                kept[mid] = {"roles": [role]}
                taken.add(mid)
        fleet[name] = {"datacenter": default.get("datacenter", f"dc-{name.rsplit('-', 1)[-1]}"), "minions": kept}

    out = workdir / "scaled"
    out.mkdir(parents=True, exist_ok=True)
    header = f"# saltpipe topology up --minions {minions} --syndics {syndics}"
    scaled_config = out / "pipeline.yaml"
    scaled_config.write_text(
        f"{header}: {config_file} with more syndics in its last environment.\n"
        + yaml.safe_dump(config, sort_keys=False),
        encoding="utf-8",
    )
    scaled_spec = out / "local-topology.yaml"
    scaled_spec.write_text(
        f"{header}: {minions} minions spread evenly over {syndics} syndics.\n"
        + yaml.safe_dump({"version": 1, "mom": spec["mom"], "syndics": fleet}, sort_keys=False),
        encoding="utf-8",
    )
    return scaled_config, scaled_spec
