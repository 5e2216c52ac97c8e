"""The planner: from an environment's target and schedule to the exact minions of every batch.

The schedule, exactly (docs/rollout.md has the worked table):

* ``P`` is the population: the minions that answered ``test.ping`` on the environment's target from the MoM.
* The **canary** comes first: its explicit ids (each must be in the population), or ``canary.size.of(P)``
  minions (a count, or a percentage of ``P`` rounded up, at least 1).
* Then each entry of ``batches`` in order, with ``reached`` = how many minions have the release so far (the
  canary included):

  - a **count** ``n`` is a batch of the next ``n`` minions (fewer if fewer remain);
  - a **percentage** ``p%`` is a *cumulative* share of the whole fleet: the batch brings ``reached`` up to
    ``ceil(p% x P)``. So ``1 -> 5% -> 25% -> 100%`` after a canary of 1 means: one more minion, then until 5% of
    the fleet has the release, then 25%, then everyone - the seeds' "1% -> 5% -> 10% -> ..." of the servers.

  An entry that brings nothing new (``5%`` of 7 minions is 1, already reached by the canary) is skipped and the
  plan says so. The last entry is always ``100%`` (the config enforces it), so every minion is in one batch.
* Minion order: the explicit canary ids first; everything else interleaved across syndics (sorted syndic ids,
  sorted minion ids within each, then round-robin), so early batches touch every syndic - a syndic serving a
  broken tree shows up in the first batches, not the last.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from pipeline.config import Canary, Environment, Gates, Size
from pipeline.rollout.model import Plan, PlanError, PlannedBatch
from pipeline.salt_client.base import Resolution


@dataclass(frozen=True)
class ScheduleEntry:
    """One computed batch size: the schedule entry (``canary``, ``1``, ``5%``) and how many minions it takes."""

    spec: str
    size: int
    reached: int


def schedule(population: int, canary: Canary, batches: Sequence[Size]) -> tuple[list[ScheduleEntry], list[tuple[str, str]]]:
    """Batch sizes for ``population`` minions: the non-empty entries (canary first) and the skipped ones.

    Pure arithmetic, no minion ids: this is the table the unit tests check for 1, 7, 50 and 10,000 minions.
    """
    if population <= 0:
        return [], []
    canary_n = len(canary.ids) if canary.ids else canary.size.of(population) if canary.size else 0
    canary_n = min(canary_n, population)
    entries = [ScheduleEntry("canary", canary_n, canary_n)]
    skipped: list[tuple[str, str]] = []
    reached = canary_n
    for size in batches:
        if size.count is not None:
            take = min(size.count, population - reached)
        else:
            take = max(0, size.of(population) - reached)
        if take <= 0:
            why = (
                "every minion is reached already"
                if reached >= population
                else f"{size} of {population} minions is {size.of(population)}, reached already"
            )
            skipped.append((str(size), why))
            continue
        reached += take
        entries.append(ScheduleEntry(str(size), take, reached))
    return entries, skipped


def order_minions(syndic_of: Mapping[str, str | None]) -> list[str]:
    """All minions interleaved across syndics (sorted within each); minions with no known syndic form one group."""
    groups: dict[str, list[str]] = {}
    for minion, syndic in syndic_of.items():
        groups.setdefault(syndic or "", []).append(minion)
    lists = [sorted(groups[k]) for k in sorted(groups)]
    if len(lists) == 1:
        return lists[0]
    return [m for m in itertools.chain.from_iterable(itertools.zip_longest(*lists)) if m is not None]


def new_rollout_id(release: str, now: datetime | None = None) -> str:
    """``20250101T120000Z-rel-3f2a9c1b7d4e-1a2b``: sortable by time, names the release, unique."""
    now = now or datetime.now(timezone.utc)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{release}-{secrets.token_hex(2)}"


def build_plan(
    env: Environment,
    resolution: Resolution,
    *,
    release: str,
    saltenv: str,
    previous_release: str | None,
    commit: str | None,
    rollout_id: str,
    client_name: str = "",
    attested: Mapping[str, str] | None = None,
    now: datetime | None = None,
    kind: str = "rollout",
    rolls_back: str | None = None,
) -> Plan:
    """The plan of rolling ``release`` out to ``env``, given who answered its target.

    Raises :class:`PlanError` when the target reaches nobody, when minions a master expected did not answer
    (a rollout must not silently leave minions on the old code while ``base`` is switched), when an explicit
    canary id is not in the population, or when a minion answers through a syndic that is not the environment's.
    """
    if resolution.silent:
        listing = ", ".join(sorted(resolution.silent)[:20]) + (" ..." if len(resolution.silent) > 20 else "")
        raise PlanError(
            f"{len(resolution.silent)} minion(s) of {env.name} expected by a master did not answer test.ping: {listing}",
            hint="bring them back or remove their keys (salt-run manage.down shows them), then plan again",
        )
    syndic_of = dict(resolution.minions)
    if not syndic_of:
        raise PlanError(
            f"the target of {env.name} ({env.target}) reaches no minion",
            hint="check the target in salt/pipeline.yaml and that the minions are up (salt-run manage.status)",
        )
    own = {s.name for s in env.syndics}
    strays = sorted(m for m, s in syndic_of.items() if s is not None and s not in own)
    if strays:
        where = ", ".join(f"{m} (via {syndic_of[m]})" for m in strays[:10])
        raise PlanError(
            f"{len(strays)} minion(s) answer the target of {env.name} through a syndic that is not one of its "
            f"syndics ({', '.join(sorted(own))}): {where}",
            hint="those syndics do not serve this release; fix the minions' grains or the environment's target",
        )
    missing = [m for m in env.canary.ids if m not in syndic_of]
    if missing:
        raise PlanError(
            f"canary minion(s) {', '.join(missing)} of {env.name} did not answer the target {env.target}",
            hint="bring the canary up, or change 'canary' in salt/pipeline.yaml",
        )

    entries, skipped = schedule(len(syndic_of), env.canary, env.batches)
    canary_ids = set(env.canary.ids)
    rest = [m for m in order_minions(syndic_of) if m not in canary_ids]
    ordered = list(env.canary.ids) + rest
    batches: list[PlannedBatch] = []
    pos = 0
    for i, entry in enumerate(entries):
        name = "canary" if i == 0 else f"batch {i} ({entry.spec})"
        batches.append(PlannedBatch(i, name, entry.spec, tuple(ordered[pos : pos + entry.size]), entry.reached))
        pos += entry.size
    assert pos == len(ordered), "the schedule must place every minion exactly once"
    return Plan(
        rollout_id=rollout_id,
        environment=env.name,
        release=release,
        saltenv=saltenv,
        previous_release=previous_release,
        commit=commit,
        target=env.target,
        population=len(syndic_of),
        batches=tuple(batches),
        skipped=tuple(skipped),
        syndic_of=syndic_of,
        gates=env.gates,
        schedule=env.describe_schedule(),
        created_at=(now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        resolution_jid=resolution.jid,
        client=client_name,
        attested=dict(attested or {}),
        kind=kind,
        rolls_back=rolls_back,
    )


def describe_plan(plan: Plan, max_ids: int = 8) -> list[str]:
    """The plan as lines for humans (printed before anything runs)."""
    by_syndic: dict[str, int] = {}
    for syndic in plan.syndic_of.values():
        by_syndic[syndic or "(direct/unknown)"] = by_syndic.get(syndic or "(direct/unknown)", 0) + 1
    lines = [
        f"rollout {plan.rollout_id}",
        f"  release {plan.release} (commit {plan.commit or 'unknown'}) to {plan.environment} as saltenv {plan.saltenv}",
        f"  previous release (rollback target): {plan.previous_release or 'none'}",
        f"  target {plan.target}: {plan.population} minion(s) - "
        + ", ".join(f"{s}: {n}" for s, n in sorted(by_syndic.items())),
        f"  schedule {plan.schedule}; gates: {_describe_gates(plan.gates)}",
    ]
    for batch in plan.batches:
        ids = ", ".join(batch.minions[:max_ids]) + (f" ... (+{len(batch.minions) - max_ids})" if len(batch.minions) > max_ids else "")
        pct = 100.0 * batch.reached / plan.population if plan.population else 0.0
        lines.append(f"  {batch.name:<18} {len(batch.minions):>6} minion(s), reached {batch.reached} ({pct:.3g}%): {ids}")
    for spec, why in plan.skipped:
        lines.append(f"  skipped {spec}: {why}")
    return lines


def _describe_gates(gates: Gates | None) -> str:
    if gates is None:
        return "none saved with the plan"
    return (f"max failure {gates.max_failure_ratio:.0%}, max missing {gates.max_missing_ratio:.0%}, "
            f"bake {gates.bake_seconds:g}s" + (", health check" if gates.health_check else ""))


_TOP_KEY = re.compile(r"^(?P<key>[^\s#{%][^:]*|\{\{.*?\}\}|'[^']*'|\"[^\"]*\")\s*:\s*(#.*)?$")
_SALTENV_KEY = re.compile(r"^\{\{-?\s*saltenv\s*-?\}\}$")


def check_top_file(text: str | None, release: str, saltenv: str) -> None:
    """Refuse a release whose ``top.sls`` cannot match anything when applied as saltenv ``saltenv``.

    Salt applies only the top-file entries keyed by the saltenv it is given (``state.apply saltenv=X`` skips a
    ``base:`` key), so a canary highstate of a top file keyed ``base:`` matches no state at all. The key must be
    ``{{ saltenv }}:`` (which renders ``base`` for the scheduled highstates and the release's saltenv for a
    canary), or ``saltenv`` itself. Reads the top-level keys of the template's text; keys built by other Jinja
    expressions are accepted (the canary then shows whether they match).
    """
    if saltenv == "base":
        return
    if text is None:
        raise PlanError(
            f"release {release} has no top.sls: a highstate of saltenv {saltenv} would apply nothing",
            hint="add states/top.sls keyed `{{ saltenv }}:` (docs/rollout.md, 'The top file')",
        )
    keys = []
    for line in text.splitlines():
        match = _TOP_KEY.match(line.rstrip())
        if match:
            keys.append(match.group("key").strip().strip("'\""))
    if not keys or any(_SALTENV_KEY.match(k) or k == saltenv for k in keys):
        return
    if all(not k.startswith("{{") for k in keys):
        raise PlanError(
            f"top.sls of {release} is keyed {', '.join(repr(k) for k in keys)}: `state.apply saltenv={saltenv}` "
            "applies only top-file entries keyed by that saltenv, so the canary would match no state",
            hint="key the top file `{{ saltenv }}:` instead of `base:` - it renders `base` for scheduled "
                 "highstates and the release's saltenv for a canary (docs/rollout.md, 'The top file')",
        )
