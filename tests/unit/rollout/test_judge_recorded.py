"""The judge on real Salt 3006.28 returns: events recorded from a local topology (judge_cases/record.py).

Each case is one job's ``salt/job/<jid>/ret/<minion>`` events as the MoM's event bus delivered them. They go
through the LocalClient's own :class:`EventRouter` (what a rollout does with the bus), then through
:func:`judge_return` - per function for a multi-function job, as the executor judges ``saltutil.sync_all`` and
``state.apply`` of one batch job. ``expect`` in each case was written by a person from docs/rollout.md's table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.rollout import judge_return
from pipeline.salt_client.local import EventRouter

CASES = sorted((Path(__file__).parent / "judge_cases").glob("*.json"))
JID = "20261202000000000000"


def _returned(case: dict[str, Any]) -> Any:
    router = EventRouter()
    router.register(JID, [case["minion"]])
    for event in case["events"]:
        router.feed(event)
    returns = router.jobs[JID].returns
    assert set(returns) == {case["minion"]}, "the recorded events hold the minion's return"
    return returns[case["minion"]]


def _check(fun: str, ret: Any, expect: dict[str, Any]) -> None:
    verdict = judge_return(fun, ret)
    assert verdict.ok is expect["ok"], f"{fun}: {verdict.reasons}"
    for fragment in expect.get("reasons", ()):
        assert any(fragment in reason for reason in verdict.reasons), (fragment, verdict.reasons)
    if expect["ok"] is False:
        assert verdict.reasons, "a failure always says why"


def test_the_recorded_cases_are_there() -> None:
    assert len(CASES) >= 10, "record them with judge_cases/record.py"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_recorded_return(path: Path) -> None:
    case = json.loads(path.read_text())
    ret = _returned(case)
    if isinstance(case["fun"], list):
        for index, fun in enumerate(case["fun"]):
            _check(fun, ret.part(fun, index), case["expect"][fun])
    else:
        _check(case["fun"], ret, case["expect"])
