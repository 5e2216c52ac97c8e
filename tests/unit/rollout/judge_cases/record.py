"""Record real Salt 3006 returns as judge cases (tests/unit/rollout/test_judge_recorded.py reads them).

Not a test: run it by hand against a running local topology, then review each case's ``expect`` by hand::

    saltpipe topology up --workdir /tmp/sprec
    python tests/unit/rollout/judge_cases/record.py /tmp/sprec     # writes tests/unit/rollout/judge_cases/*.json
    saltpipe topology down --workdir /tmp/sprec

Each case publishes one job from the MoM to one minion (through its syndic, as a rollout does) and keeps every
``salt/job/<jid>/ret/<minion>`` event the MoM's bus delivered, exactly as ``SaltEvent.get_event(full=True)``
gave it (minus volatile fields: jid and timestamps are replaced). The test feeds those events through the
LocalClient's own :class:`~pipeline.salt_client.local.EventRouter` and judges the result. ``expect`` is what the
rollout must decide for that return (docs/rollout.md's table): it is written by a person, never copied from the
judge, and kept when a case is recorded again.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]
MINION = "test-web-1"

#: Extra SLS served beside the content for the failure cases (each a real Salt failure mode).
SLS = {
    "judge_fail.sls": "a file that cannot be managed:\n  file.managed:\n    - name: /nonexistent-dir/x\n"
    "    - source: salt://does/not/exist\n",
    "judge_requisite.sls": "first fails:\n  test.fail_without_changes: []\n"
    "second needs it:\n  test.succeed_with_changes:\n    - require:\n      - test: first fails\n",
    "judge_render_error.sls": "broken: [yaml\n  pkg.installed\n",
    "judge_changes.sls": "changes something:\n  test.succeed_with_changes: []\n",
}

#: name -> (function or functions, args (a list per function for a multi-function job), kwargs)
CASES: dict[str, tuple[Any, list[Any], dict[str, Any]]] = {
    "state_apply_ok": ("state.apply", ["judge_changes"], {}),
    "state_apply_test_mode": ("state.apply", ["judge_changes"], {"test": True}),
    "state_apply_failed_state": ("state.apply", ["judge_fail"], {}),
    "state_apply_failed_requisite": ("state.apply", ["judge_requisite"], {}),
    "state_apply_render_error": ("state.apply", ["judge_render_error"], {}),
    "state_apply_missing_sls": ("state.apply", ["judge_no_such_sls"], {}),
    "function_not_available": ("nosuch.function", [], {}),
    "sync_all_ok": ("saltutil.sync_all", [], {}),
    "bare_false": ("test.false", [], {}),
    "bare_true": ("test.true", [], {}),
    "exception_in_module": ("test.exception", ["recorded failure"], {}),
    "chain_sync_all_state_apply_ok": (["saltutil.sync_all", "state.apply"], [[], ["judge_changes"]], {}),
    "chain_sync_all_state_apply_failed": (["saltutil.sync_all", "state.apply"], [[], ["judge_fail"]], {}),
}


def _scrub(event: dict[str, Any], jid: str) -> dict[str, Any]:
    text = json.dumps(event, sort_keys=True, default=str).replace(jid, "20261202000000000000")
    data = json.loads(text)
    for key in ("_stamp",):
        data.get("data", {}).pop(key, None)
    return data


def record(workdir: Path) -> None:
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    import salt.client  # pylint: disable=import-outside-toplevel
    import salt.config  # pylint: disable=import-outside-toplevel
    from it_helpers import build_content_tree, serve_tree  # pylint: disable=import-outside-toplevel

    from pipeline.topology import load  # pylint: disable=import-outside-toplevel

    topology = load(workdir)
    tree = build_content_tree(workdir / "judge-content")
    for name, text in SLS.items():
        (tree / name).write_text(text)
    serve_tree(topology, tree, "judge-content")
    local = salt.client.LocalClient(mopts=salt.config.client_config(str(topology.mom.config_file)))
    for name, (fun, args, kwargs) in CASES.items():
        if isinstance(fun, list):
            arg = [list(a) for a in args]
            if kwargs:
                raise SystemExit(f"{name}: kwargs of a multi-function job go into its argument lists")
        else:
            arg = list(args) + ([dict(kwargs, __kwarg__=True)] if kwargs else [])
        local.event.subscribe("salt/job/")
        jid = local.cmd_async([MINION], fun, arg, tgt_type="list")
        if not jid:
            raise SystemExit(f"{name}: the MoM refused to publish {fun}")
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("/ret/" in e["tag"] for e in events):
            raw = local.event.get_event(wait=1, tag=f"salt/job/{jid}/ret", full=True)
            if raw:
                events.append(_scrub(raw, jid))
        if not events:
            raise SystemExit(f"{name}: no return from {MINION} within 120 s")
        path = HERE / f"{name}.json"
        expect = json.loads(path.read_text())["expect"] if path.exists() else {"ok": None, "reason": "REVIEW ME"}
        case = {"fun": fun, "minion": MINION, "events": events, "expect": expect}
        path.write_text(json.dumps(case, indent=2, sort_keys=True) + "\n")
        print(f"{name}: {len(events)} event(s), expect {expect}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    record(Path(sys.argv[1]))
