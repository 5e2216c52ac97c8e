"""Impact analysis: what a release *would* change in an environment, from a dry run on a sample of its minions.

``analyse_impact(ImpactContext) -> ImpactResult`` (the CLI is ``saltpipe impact ENV --release ID``):

1. **Check** (when a :class:`~pipeline.rollout.serving.ReleaseServing` is given) that every syndic of the
   environment serves the release as its canary saltenv, and that the release's ``top.sls`` can match anything
   under that saltenv (the rollout planner's own check) - otherwise the dry run would report nothing, which
   would read as "no impact".
2. **Resolve** the environment's compound target (``test.ping``) and read every answering minion's ``roles``
   grain (``grains.item roles``, list target).
3. **Sample** ``sample_per_role`` minions per role, deterministically: sorted ids, preferring minions already
   picked for another role (a web+app minion covers both roles with one dry run). A minion without the grain
   belongs to the role :data:`NO_ROLE`.
4. **Dry run**: ``state.apply test=True saltenv=<release saltenv>`` on exactly the sampled minions.
5. **Restore** the sampled minions' custom modules: Salt's highstate syncs the custom modules of the saltenv
   it applies *even with* ``test=True`` (``autoload_dynamic_modules``, ``BaseHighState.load_dynamic``), so
   the dry run left the release's ``_modules``/``_states``/... on them. ``saltutil.sync_all saltenv=base``
   puts back what ``base`` serves (Salt's sync removes what the saltenv does not have); a minion where that
   fails is reported (``not_restored``) and makes the result not ok.
6. **Aggregate** per state ID: the minions where ``test=True`` reports changes (``result: None`` or non-empty
   ``changes``) and those where the state fails (``result: False``). A render error or an error string counts
   as the failure of a pseudo state (:data:`RENDER_ERROR`, :data:`MINION_ERROR`).

No state is ever applied: ``test=True`` is always passed and the client only publishes allow-listed functions to
list targets. Minions that do not return within ``timeout`` (after a look in the MoM's job cache) are
``missing``. The result is data; only infrastructure failures raise. The JSON (:meth:`ImpactResult.to_json`) is
the contract of :class:`pipeline.mrnote.ImpactReport` (docs/review.md, docs/impact.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.config import Environment
from pipeline.errors import SyncError, UsageError
from pipeline.rollout.judge import judge_return
from pipeline.salt_client.base import MinionReturn, SaltClient
from pipeline.salt_client.polling import Clock, SystemClock, collect_returns

#: The role of minions whose ``roles`` grain is missing or empty.
NO_ROLE = "(no role)"
#: Pseudo state IDs for returns that are not a highstate dict.
RENDER_ERROR = "(render error)"
MINION_ERROR = "(error)"
#: Failure comments are clipped: one minion's traceback must not blow up the MR note.
MAX_COMMENT = 300


class Serving(Protocol):
    """What the impact analysis needs of the sync stage (satisfied by :class:`pipeline.rollout.SyncServing`)."""

    def saltenv_for(self, release_id: str) -> str: ...

    def attest(self, env: Environment, release_id: str) -> Mapping[str, str]: ...

    def top_file(self, release_id: str) -> str | None: ...


@dataclass(frozen=True)
class ImpactContext:
    """Everything one impact analysis needs.

    ``serving=None`` skips the exposure and top-file checks (the caller vouches the saltenv is served).
    ``timeout`` bounds each wait for returns (grains, then the dry run); ``sha`` is the release's commit, for
    the report only.
    """

    environment: Environment
    release_id: str
    saltenv: str
    client: SaltClient
    sample_per_role: int = 2
    serving: Serving | None = None
    sha: str | None = None
    resolve_timeout: float = 30.0
    timeout: float = 300.0
    poll_interval: float = 1.0
    clock: Clock | None = None

    def __post_init__(self) -> None:
        if self.sample_per_role < 1:
            raise UsageError(f"--sample-per-role must be at least 1, not {self.sample_per_role}")


@dataclass(frozen=True)
class StateImpact:
    """One state ID: where it would change and where it would fail, over the sampled minions."""

    id: str
    function: str | None
    sls: str | None
    changed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    comment: str | None = None


def in_role_order(sampled: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """Every sampled minion once, in role order (a minion of two roles stands under its first)."""
    seen: dict[str, None] = {}
    for ids in sampled.values():
        seen.update(dict.fromkeys(ids))
    return tuple(seen)


@dataclass(frozen=True)
class ImpactResult:
    """The aggregated dry run. ``ok`` is false when a state would fail or a sampled minion did not answer."""

    environment: str
    release: str
    saltenv: str
    sha: str | None
    sampled: Mapping[str, tuple[str, ...]]
    missing: tuple[str, ...]
    states: tuple[StateImpact, ...]
    unreachable: tuple[str, ...] = ()  # resolved minions whose grains did not come back (not sampled)
    jid: str | None = None
    not_restored: tuple[str, ...] = ()  # sampled minions whose custom modules could not be put back to base's
    restore_jid: str | None = None

    @property
    def minions(self) -> tuple[str, ...]:
        return in_role_order(self.sampled)

    @property
    def failed(self) -> tuple[StateImpact, ...]:
        return tuple(s for s in self.states if s.failed)

    @property
    def changed(self) -> tuple[StateImpact, ...]:
        return tuple(s for s in self.states if s.changed)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.missing and not self.not_restored

    def to_json(self) -> dict[str, Any]:
        """The JSON of ``saltpipe impact --format json`` (the shape :class:`pipeline.mrnote.ImpactReport` reads)."""
        return {
            "environment": self.environment,
            "release": self.release,
            "saltenv": self.saltenv,
            "sha": self.sha,
            "sampled": {role: list(ids) for role, ids in self.sampled.items()},
            "missing": list(self.missing),
            "unreachable": list(self.unreachable),
            "jid": self.jid,
            "not_restored": list(self.not_restored),
            "restore_jid": self.restore_jid,
            "ok": self.ok,
            "states": [
                {
                    "id": s.id,
                    "function": s.function,
                    "sls": s.sls,
                    "changed": list(s.changed),
                    "failed": list(s.failed),
                    **({"comment": s.comment} if s.comment else {}),
                }
                for s in self.states
            ],
        }


# -- steps ------------------------------------------------------------------------------------------------------


def _check_served(ctx: ImpactContext) -> None:
    if ctx.serving is None:
        return
    from pipeline.rollout.planner import check_top_file

    env = ctx.environment
    try:
        ctx.serving.attest(env, ctx.release_id)
    except SyncError as exc:
        # The dry run of a saltenv nobody serves would report "no top file match": refuse instead.
        expose = f"saltpipe sync {env.name} --release {ctx.release_id} --canary"
        unasked = "could not attest" in exc.message  # a syndic not asked at all: exposing again would not help
        raise SyncError(
            f"{ctx.release_id} is not exposed as saltenv {ctx.saltenv} on every syndic of {env.name}: {exc.message}",
            hint=(f"fix what the syndic's line above says, then run again (expose the release with `{expose}` "
                  "if it is not yet)") if unasked else f"expose it first: {expose}",
        ) from exc
    check_top_file(ctx.serving.top_file(ctx.release_id), ctx.release_id, ctx.saltenv)


def _collect(ctx: ImpactContext, clock: Clock, jid: str, targets: Sequence[str]) -> dict[str, MinionReturn]:
    return collect_returns(ctx.client, jid, targets, timeout=ctx.timeout, poll_interval=ctx.poll_interval, clock=clock)


def roles_of(ret: MinionReturn) -> tuple[str, ...]:
    value = ret.ret.get("roles") if isinstance(ret.ret, Mapping) else None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return (NO_ROLE,)
    roles = tuple(sorted({str(r) for r in value if r}))
    return roles or (NO_ROLE,)


def sample_minions(roles_by_minion: Mapping[str, Sequence[str]], per_role: int) -> dict[str, tuple[str, ...]]:
    """Pick ``per_role`` minions per role: sorted ids, minions already picked for another role first.

    Deterministic, so two pipelines of the same MR dry-run the same minions (and their notes compare).
    """
    members: dict[str, list[str]] = {}
    for minion, roles in roles_by_minion.items():
        for role in roles:
            members.setdefault(role, []).append(minion)
    chosen: set[str] = set()
    out: dict[str, tuple[str, ...]] = {}
    for role in sorted(members):
        pick = sorted(members[role], key=lambda m: (m not in chosen, m))[:per_role]
        chosen.update(pick)
        out[role] = tuple(sorted(pick))
    return out


def _clip(text: Any) -> str:
    text = str(text).strip()
    return text if len(text) <= MAX_COMMENT else text[: MAX_COMMENT - 3] + "..."


@dataclass
class _Acc:
    function: str | None
    sls: str | None
    changed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    comment: str | None = None
    order: float = 0.0


def _parse_key(key: str) -> tuple[str, str | None]:
    """``file_|-nginx_conf_|-/etc/nginx.conf_|-managed`` -> (``nginx_conf``, ``file.managed``)."""
    parts = key.split("_|-")
    if len(parts) >= 4:
        return parts[1], f"{parts[0]}.{parts[-1]}"
    return key, None


def _add(acc: dict[str, _Acc], state_id: str, minion: str, *, function: str | None, sls: str | None,
         changed: bool, failed: bool, comment: Any = None, order: float = 1e9) -> None:
    item = acc.setdefault(state_id, _Acc(function=function, sls=sls, order=order))
    item.order = min(item.order, order)
    if failed:
        item.failed.append(minion)
        if item.comment is None and comment:
            item.comment = _clip(comment)
    elif changed:
        item.changed.append(minion)


def _aggregate(returns: Mapping[str, MinionReturn]) -> tuple[StateImpact, ...]:
    acc: dict[str, _Acc] = {}
    for minion in sorted(returns):
        ret = returns[minion].ret
        if isinstance(ret, list):
            # state.apply returns its render and compile errors as a list of strings.
            _add(acc, RENDER_ERROR, minion, function=None, sls=None, changed=False, failed=True,
                 comment="; ".join(str(e) for e in ret) or "render error", order=-1)
        elif not isinstance(ret, Mapping):
            _add(acc, MINION_ERROR, minion, function=None, sls=None, changed=False, failed=True, comment=ret, order=-1)
        else:
            for key, value in ret.items():
                state_id, function = _parse_key(str(key))
                if not isinstance(value, Mapping):
                    _add(acc, state_id, minion, function=function, sls=None, changed=False, failed=True,
                         comment=f"malformed state return: {_clip(value)}")
                    continue
                state_id = str(value.get("__id__") or state_id)
                result = value.get("result")
                _add(acc, state_id, minion, function=function, sls=value.get("__sls__"),
                     changed=result is None or bool(value.get("changes")), failed=result is False,
                     comment=value.get("comment"), order=float(value.get("__run_num__", 1e9)))
    states = [
        StateImpact(id=sid, function=a.function, sls=a.sls, changed=tuple(a.changed), failed=tuple(a.failed),
                    comment=a.comment)
        for sid, a in acc.items()
        if a.changed or a.failed
    ]
    # Failures first, then the widest changes; the state ID breaks ties so the output is stable.
    states.sort(key=lambda s: (-len(s.failed), -len(s.changed), s.id))
    return tuple(states)


def analyse_impact(ctx: ImpactContext) -> ImpactResult:
    """Dry-run the release on a sample of the environment's minions and aggregate per state ID (module doc).

    Raises :class:`~pipeline.errors.SaltError` when the master cannot be reached, :class:`SyncError` when the
    release is not exposed, :class:`UsageError` when the target matches no minion.
    """
    clock = ctx.clock or SystemClock()
    env = ctx.environment
    _check_served(ctx)
    resolution = ctx.client.resolve(env.target, timeout=ctx.resolve_timeout, syndics=[s.name for s in env.syndics])
    minions = sorted(resolution.minions)
    if not minions:
        raise UsageError(
            f"no minion of {env.name} answered (target {env.target!r})",
            hint="check the minions are up and connected (saltpipe topology status / salt-run manage.status)",
        )
    grains_job = ctx.client.publish(minions, "grains.item", ["roles"])
    grains = _collect(ctx, clock, grains_job.jid, minions)
    roles = {m: roles_of(r) for m, r in grains.items()}
    sampled = sample_minions(roles, ctx.sample_per_role)
    targets = sorted({m for ids in sampled.values() for m in ids})
    job = ctx.client.publish(targets, "state.apply", kwarg={"test": True, "saltenv": ctx.saltenv})
    returns = _collect(ctx, clock, job.jid, targets)
    # The dry run synced the release's custom modules onto the sampled minions (see step 5): put base's back.
    restore = ctx.client.publish(targets, "saltutil.sync_all", kwarg={"saltenv": "base"})
    restored = _collect(ctx, clock, restore.jid, targets)
    return ImpactResult(
        environment=env.name,
        release=ctx.release_id,
        saltenv=ctx.saltenv,
        sha=ctx.sha,
        sampled=sampled,
        missing=tuple(m for m in targets if m not in returns),
        states=_aggregate(returns),
        unreachable=tuple(m for m in minions if m not in grains),
        jid=job.jid,
        not_restored=tuple(m for m in targets if m not in restored or not judge_return(
            "saltutil.sync_all", restored[m]).ok),
        restore_jid=restore.jid,
    )


# -- formatting -------------------------------------------------------------------------------------------------


def format_text(result: ImpactResult, echo: Callable[[str], None]) -> None:
    """The human summary: sample, then each state that would fail or change."""
    echo(f"impact of {result.release} (saltenv {result.saltenv}) on {result.environment}: "
         f"{len(result.minions)} minion(s) sampled, state.apply test=True (jid {result.jid})")
    for role, ids in result.sampled.items():
        echo(f"  {role}: {', '.join(ids)}")
    if result.unreachable:
        echo(f"  not sampled (grains did not return): {', '.join(result.unreachable)}")
    if result.missing:
        echo(f"  MISSING (no return): {', '.join(result.missing)}")
    if result.not_restored:
        echo(f"  NOT RESTORED (the release's custom modules stay there until a sync of base): "
             f"{', '.join(result.not_restored)}")
    if not result.states:
        echo("  no state would change")
    for s in result.states:
        what = s.function or "-"
        if s.failed:
            echo(f"  FAIL   {s.id} ({what}) on {len(s.failed)}: {', '.join(s.failed)}"
                 + (f" - {s.comment}" if s.comment else ""))
        if s.changed:
            echo(f"  change {s.id} ({what}) on {len(s.changed)}: {', '.join(s.changed)}")
    echo(f"  {len(result.failed)} state(s) would fail, {len(result.changed)} would change")
