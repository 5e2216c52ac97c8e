"""The runtime policy stage: what every master refuses to publish, and whether the running masters do.

The policy lives in ``salt/daemons/runtime-policy.yaml`` (rationale: docs/runtime-policy.md; its model,
:mod:`pipeline.config.runtime_policy`). The master templates render it into ``publisher_acl_blacklist``;
:func:`verify_runtime` reads each master's *effective* configuration (Salt's own parser, ``master.d/`` included)
and probes the running master, and returns drift as data. Only a file that cannot be loaded raises.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline.config.runtime_policy import RuntimePolicy
from pipeline.jsonfile import field_json
from pipeline.saltlib import import_salt

#: A target no minion has: probes are published to it, so a master that fails to refuse runs nothing anywhere.
PROBE_TARGET = "saltpipe-policy-probe.invalid"


# ----------------------------------------------------------------------------------------------------------
# Verification: effective configuration and live probes of each master


DriftCheck = Literal["blacklist-missing", "setting", "probe-accepted", "probe-refused", "unreachable"]


@dataclass(frozen=True)
class MasterTarget:
    """A master to verify: a name for the report and its config directory (the ``-c`` of Salt's CLIs)."""

    name: str
    config_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "master"


@dataclass(frozen=True)
class Drift:
    """One difference between a master and the policy. ``where`` is ``config`` (the effective configuration
    Salt reads, ``master.d/`` included) or ``running`` (what the live master does when published to)."""

    master: str
    check: DriftCheck
    where: Literal["config", "running"]
    subject: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return field_json(self)


@dataclass(frozen=True)
class MasterReport:
    """What was checked on one master, and the drift found."""

    name: str
    config_file: Path
    checks: int
    probed: bool
    drift: tuple[Drift, ...]

    @property
    def ok(self) -> bool:
        return not self.drift


@dataclass(frozen=True)
class RuntimeReport:
    """The result of :func:`verify_runtime`: one report per master; ``ok`` when none drifted."""

    policy: Path | None
    masters: tuple[MasterReport, ...]

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.masters)

    @property
    def drift(self) -> tuple[Drift, ...]:
        return tuple(d for m in self.masters for d in m.drift)


#: Publishes one probe to a master: ``True`` refused, ``False`` accepted; raises ``OSError`` when unreachable.
Prober = Callable[[str], bool]


def effective_master_config(config_file: Path) -> dict[str, Any]:
    """The configuration a master started from ``config_file`` runs with: Salt's own parser, defaults and
    ``master.d/*.conf`` included. :class:`~pipeline.errors.ConfigError` when Salt cannot read it."""
    from pipeline.errors import ConfigError  # local: keeps the module's import light for the CLI

    if not config_file.is_file():
        raise ConfigError("master config not found", path=config_file, hint="pass the directory holding 'master'")
    config = import_salt("salt.config")
    try:
        return config.master_config(str(config_file))
    except Exception as exc:  # Salt raises its own and plain errors for unparsable files
        raise ConfigError(f"Salt cannot load it: {exc}", path=config_file, hint="fix the file") from exc


def check_config(policy: RuntimePolicy, name: str, opts: dict[str, Any]) -> tuple[int, list[Drift]]:
    """Compare a master's effective options with the policy: every blacklist pattern present (extra ones are
    stricter, so fine), every setting equal. Returns (checks made, drift)."""
    drift: list[Drift] = []
    blacklist = opts.get("publisher_acl_blacklist") or {}
    modules = blacklist.get("modules", []) if isinstance(blacklist, dict) else []
    if isinstance(modules, str):
        modules = [modules]
    for entry in policy.blacklist:
        if entry.function not in modules:
            drift.append(
                Drift(
                    name,
                    "blacklist-missing",
                    "config",
                    entry.function,
                    f"publisher_acl_blacklist.modules lacks {entry.function!r} ({entry.why})",
                )
            )
    for key, expected in policy.settings.items():
        actual = opts.get(key)
        if actual is None and isinstance(expected, (dict, list)) and not expected:
            # Salt has no default for some (peer_run): absent means empty, which is what the policy asks.
            actual = type(expected)()
        if actual != expected:
            drift.append(
                Drift(name, "setting", "config", key, f"{key} is {json.dumps(actual)}, expected {json.dumps(expected)}")
            )
    return len(policy.blacklist) + len(policy.settings), drift


def probe_running(policy: RuntimePolicy, name: str, prober: Prober) -> tuple[int, list[Drift]]:
    """Publish each blacklist probe and each allowed function to a target no minion has, and compare the
    master's answers with the policy. An unreachable master is one drift and ends its probing."""
    drift: list[Drift] = []
    checks = 0
    cases = [(e.probe, True, e.why) for e in policy.blacklist] + [(f, False, "") for f in policy.allowed]
    for function, must_refuse, why in cases:
        checks += 1
        try:
            refused = prober(function)
        except OSError as exc:
            drift.append(Drift(name, "unreachable", "running", name, f"cannot publish to it: {exc}"))
            break
        if must_refuse and not refused:
            drift.append(
                Drift(name, "probe-accepted", "running", function, f"the running master publishes {function} ({why})")
            )
        elif not must_refuse and refused:
            drift.append(
                Drift(name, "probe-refused", "running", function, f"the running master refuses {function}, which must stay allowed")
            )
    return checks, drift


class LocalClientProber:
    """Publishes probes with Salt's LocalClient on the master host (needs read access to its keys)."""

    def __init__(self, config_file: Path, *, timeout: float = 10.0) -> None:
        self._config_file = config_file
        self._timeout = timeout
        self._client: Any = None

    def __call__(self, function: str) -> bool:
        exceptions = import_salt("salt.exceptions")
        if self._client is None:
            client = import_salt("salt.client")
            config = import_salt("salt.config")
            try:
                self._client = client.LocalClient(mopts=config.client_config(str(self._config_file)))
            except Exception as exc:
                raise OSError(f"no client for {self._config_file}: {exc}") from exc
        try:
            self._client.pub(PROBE_TARGET, function, tgt_type="list", timeout=self._timeout)
        except exceptions.AuthorizationError:
            return True
        except (exceptions.SaltClientError, exceptions.SaltReqTimeoutError) as exc:
            raise OSError(str(exc) or type(exc).__name__) from exc
        return False

    def close(self) -> None:
        if self._client is not None:
            self._client.destroy()
            self._client = None


def verify_runtime(
    policy: RuntimePolicy,
    masters: Sequence[MasterTarget],
    *,
    probe: bool = True,
    prober_factory: Callable[[MasterTarget], Prober] | None = None,
) -> RuntimeReport:
    """Check every master's effective configuration against ``policy`` and, with ``probe``, publish to it to
    see what it actually refuses. Drift is data; only an unreadable config file raises."""
    reports = []
    for master in masters:
        opts = effective_master_config(master.config_file)
        checks, drift = check_config(policy, master.name, opts)
        if probe:
            prober = (prober_factory or (lambda m: LocalClientProber(m.config_file)))(master)
            try:
                more, live = probe_running(policy, master.name, prober)
            finally:
                close = getattr(prober, "close", None)
                if callable(close):
                    close()
            checks += more
            drift += live
        reports.append(MasterReport(master.name, master.config_file, checks, probe, tuple(drift)))
    return RuntimeReport(policy.source, tuple(reports))


# ----------------------------------------------------------------------------------------------------------
# Formatters


def format_text(report: RuntimeReport) -> str:
    """Human-readable: one line per master, then each drift."""
    lines = [f"runtime policy: {report.policy}"]
    for master in report.masters:
        mark = "ok" if master.ok else f"DRIFT ({len(master.drift)})"
        how = "config + live probes" if master.probed else "config only"
        lines.append(f"  {master.name}: {mark} - {master.checks} checks, {how} ({master.config_file})")
        for d in master.drift:
            lines.append(f"    [{d.check}] {d.where}: {d.message}")
    total = len(report.drift)
    lines.append("no drift" if report.ok else f"{total} drift finding(s) on {sum(not m.ok for m in report.masters)} master(s)")
    return "\n".join(lines)


def format_json(report: RuntimeReport) -> str:
    """Machine-readable: ``{"ok", "policy", "masters": [{"name", "config_file", "checks", "probed", "drift"}]}``."""
    data = {
        "ok": report.ok,
        "policy": str(report.policy) if report.policy else None,
        "masters": [
            {
                "name": m.name,
                "config_file": str(m.config_file),
                "checks": m.checks,
                "probed": m.probed,
                "ok": m.ok,
                "drift": [d.as_dict() for d in m.drift],
            }
            for m in report.masters
        ],
    }
    return json.dumps(data, indent=2)
