"""``saltpipe fixtures import``: real grains and pillar of sample minions become lint fixtures.

The data comes from the MoM (``grains.items`` and ``pillar.items`` published to the named minions, one job) or
from files of ``salt-call grains.items --out json`` / ``salt MINION pillar.items --out json``. Before anything
is written, pillar is redacted (:func:`redact`): every value under a key that looks secret (password, secret,
token, key, private, credential...) and every PEM block anywhere becomes a placeholder, keeping the structure
so templates that loop over it still render. Grains are kept as they are.

Each imported minion replaces a fixture minion of the same id (``replace`` drops the others, e.g. the ones
``saltpipe init`` generated); the imported pillars are deep-merged into the environment's fixture pillar, which
lint shares between that environment's minions (docs/lint.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError, SaltError, UsageError
from pipeline.salt_client.base import SaltClient
from pipeline.salt_client.polling import Clock, collect_returns
from pipeline.topology.pillar import deep_merge
from pipeline.userfiles import write_file

#: Read-only functions ``fixtures import`` adds to the client's allow list.
IMPORT_FUNCTIONS = ("grains.items", "pillar.items")

REDACTED = "<redacted by saltpipe>"
#: Pillar keys whose values are never written to a fixture (a substring match, any case).
SECRET_KEY_RE = re.compile(r"pass(word|wd|phrase)?|secret|token|key|private|credential|cert_?pass|salt_?api", re.I)
_PEM_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.S)


def redact(value: Any, *, secret: bool = False) -> tuple[Any, int]:
    """``(value with secrets replaced, how many values were replaced)``; ``secret`` marks a whole subtree."""
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        count = 0
        for key, item in value.items():
            out[key], n = redact(item, secret=secret or bool(SECRET_KEY_RE.search(str(key))))
            count += n
        return out, count
    if isinstance(value, list):
        items = [redact(item, secret=secret) for item in value]
        return [v for v, _ in items], sum(n for _, n in items)
    if secret and value is not None and not isinstance(value, bool):
        return REDACTED, 1
    if isinstance(value, str) and "-----BEGIN " in value:
        replaced, n = _PEM_RE.subn(lambda m: f"-----BEGIN {m.group(1)}-----\n{REDACTED}\n-----END {m.group(1)}-----", value)
        return replaced, n
    return value, 0


def parse_salt_json(text: str, source: str) -> dict[str, dict[str, Any]]:
    """``{minion: data}`` from ``salt ... --out json`` (one document per minion, or one for all) or ``salt-call
    ... --out json`` (``{"local": data}``: the minion is named by the ``id`` grain, else ``local``)."""
    decoder = json.JSONDecoder()
    out: dict[str, dict[str, Any]] = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        try:
            doc, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{source}: not the JSON output of salt or salt-call ({exc.msg} at char {exc.pos})",
                             hint="produce it with: salt-call grains.items --out json > FILE") from None
        if not isinstance(doc, dict):
            raise UsageError(f"{source}: expected {{minion: data}} documents", hint="use --out json, not --out yaml or nested")
        for minion, data in doc.items():
            if not isinstance(data, dict):
                raise UsageError(f"{source}: {minion}: returned {type(data).__name__}, not a mapping (did the call fail?)",
                                 hint="check that the minion answered grains.items / pillar.items")
            name = str(data.get("id") or minion) if minion == "local" else str(minion)
            out[name] = data
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    if not out:
        raise UsageError(f"{source}: empty", hint="salt-call grains.items --out json > FILE")
    return out


@dataclass(frozen=True)
class ImportResult:
    """Minions written, minions dropped (``replace``), values redacted, and the files written."""

    minions: tuple[str, ...]
    dropped: tuple[str, ...]
    redacted: int
    files: tuple[Path, ...]


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {str(exc).splitlines()[0]}", path=path, hint="fix it, or delete it and import again") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping", path=path, line=1)
    return data


def write_fixtures(grains_path: Path, pillar_path: Path, grains: Mapping[str, Mapping[str, Any]],
                   pillars: Mapping[str, Mapping[str, Any]], *, replace: bool = False) -> ImportResult:
    """Merge imported ``grains`` / ``pillars`` (by minion) into the fixture files; pillars are redacted here."""
    if not grains:
        raise UsageError("no grains to import", hint="name minions, or --from FILE of salt-call grains.items --out json")
    existing = _load(grains_path)
    if set(existing) == {"minions"} and isinstance(existing["minions"], dict):
        before: dict[str, Any] = dict(existing["minions"])
    else:
        before = {str(existing.get("id") or "fixture"): existing} if existing else {}
    minions = {} if replace else before
    dropped = tuple(m for m in before if m not in grains) if replace else ()
    for minion, data in grains.items():
        minions[minion] = {"id": minion, **{k: v for k, v in data.items() if k != "id"}}
    pillar: dict[str, Any] = {} if replace else _load(pillar_path)
    redacted = 0
    for data in pillars.values():
        clean, n = redact(dict(data))
        redacted += n
        pillar = deep_merge(pillar, clean)
    for path, head, data in (
        (grains_path, "# Fixture minions: real grains imported by `saltpipe fixtures import` (docs/adopting.md).\n",
         {"minions": minions}),
        (pillar_path, "# Fixture pillar: real pillar imported by `saltpipe fixtures import`; secrets redacted.\n", pillar),
    ):
        write_file(path, head + yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True))
    return ImportResult(tuple(grains), dropped, redacted, (grains_path, pillar_path))


def read_files(paths: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """Every ``{minion: data}`` of the given salt JSON files, later files winning."""
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror}") from exc
        out.update(parse_salt_json(text, str(path)))
    return out


@dataclass(frozen=True)
class Fetched:
    """Grains and pillar by minion, and (with a target) which minions were sampled for which role."""

    grains: dict[str, dict[str, Any]]
    pillars: dict[str, dict[str, Any]]
    sampled: dict[str, tuple[str, ...]]


def fetch_from_salt(client: SaltClient, clock: Clock, *, minions: Sequence[str] = (), target: str | None = None,
                    per_role: int = 1, timeout: float = 60.0, poll_interval: float = 1.0) -> Fetched:
    """``grains.items`` and ``pillar.items`` of ``minions``, or of ``per_role`` minions per role (grain ``roles``)
    of the compound ``target``, in one job published to exactly those ids. A minion that does not answer, or
    answers something that is not a mapping, is a :class:`SaltError` naming it (fail closed: no partial import)."""
    from pipeline.impact import roles_of, sample_minions

    sampled: dict[str, tuple[str, ...]] = {}
    if target is not None:
        found = sorted(client.resolve(target, timeout=timeout).minions)
        if not found:
            raise UsageError(f"no minion answered for target {target!r}", hint="check the expression with salt -C ... test.ping")
        job = client.publish(found, "grains.item", ["roles"])
        roles = collect_returns(client, job.jid, found, timeout=timeout, poll_interval=poll_interval, clock=clock)
        sampled = sample_minions({m: roles_of(r) for m, r in roles.items()}, per_role)
        minions = sorted({m for ids in sampled.values() for m in ids})
    published = client.publish_chain(list(minions), [(fun, (), {}) for fun in IMPORT_FUNCTIONS])
    got = collect_returns(client, published.jid, minions, timeout=timeout, poll_interval=poll_interval, clock=clock)
    missing = sorted(set(minions) - set(got))
    if missing:
        raise SaltError(f"no return from {', '.join(missing)} (jid {published.jid})",
                        hint="check the ids (salt-key -L on the syndics) and that the minions are up, or use --from FILE")
    grains = {m: r.part("grains.items", 0).ret for m, r in got.items()}
    pillars = {m: r.part("pillar.items", 1).ret for m, r in got.items()}
    bad = sorted(m for m in got if not isinstance(grains[m], dict) or not isinstance(pillars[m], dict))
    if bad:
        raise SaltError(f"grains.items / pillar.items failed on {', '.join(bad)} (jid {published.jid})",
                        hint="run them on that minion with salt-call to see why")
    return Fetched(grains, pillars, sampled)
