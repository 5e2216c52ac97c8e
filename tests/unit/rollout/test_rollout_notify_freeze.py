"""The executor's notifications (a real webhook receiver on loopback) and freeze windows at the rollout's start."""

from __future__ import annotations

import dataclasses
import json
import socket

import pytest
from rollout_helpers import RELEASE, TEST_FLEET, Harness, make_config
from test_rollout_executor import fail_apply_on
from webhook_receiver import webhook_receiver

from pipeline.config.notify import NotifySettings
from pipeline.freeze import OVERRIDES_FILE, FreezeRefused
from pipeline.notify import notifier_from_environ
from pipeline.rollout import Outcome, RolloutRequest, RolloutStore, start_rollout
from scripted_client import ScriptedSaltClient

ALWAYS = {"name": "change-freeze", "start": "2000-01-01T00:00", "end": "2100-01-01T00:00", "timezone": "Europe/Berlin"}


def notifier_for(url: str, **settings: object):
    return notifier_from_environ(NotifySettings(**settings), {"SALTPIPE_NOTIFY_WEBHOOK": url})


def journal(harness: Harness, env: str = "test") -> list[dict]:
    store = RolloutStore(harness.state_dir)
    rollout_id = store.latest(env)
    assert rollout_id
    return list(store.journal(env, rollout_id).records())


def test_started_and_finished_reach_the_webhook(harness: Harness) -> None:
    with webhook_receiver() as hook:
        ctx = dataclasses.replace(harness.ctx("test", ScriptedSaltClient(TEST_FLEET)), notifier=notifier_for(
            hook.url, status_url="http://127.0.0.1:8080"))
        result = start_rollout(RolloutRequest(ctx, RELEASE, commit="c0ffee1234567890"))
    assert result.outcome is Outcome.SUCCEEDED
    assert [p["content_type"] for p in hook.posts] == ["application/json"] * 2
    assert all(set(p["json"]) == {"text"} for p in hook.posts)  # the Slack/Mattermost incoming-webhook shape
    started, finished = hook.texts()
    assert f"rollout {result.plan.rollout_id} of {RELEASE} to test started by " in started
    assert "3 minion(s) in 3 batch(es) (1/1/1), commit c0ffee123456" in started
    assert "finished: SUCCEEDED (3/3 batches run)" in finished
    assert finished.endswith(f"\nhttp://127.0.0.1:8080/rollouts/test/{result.plan.rollout_id}")
    assert not [r for r in journal(harness) if r["event"] == "notify_failed"]


def test_halted_and_rolled_back_are_notified(harness: Harness) -> None:
    harness.serving.base = "rel-ba9876543210"
    with webhook_receiver() as hook:
        client = ScriptedSaltClient(TEST_FLEET, script=fail_apply_on("test-web-2"))
        ctx = dataclasses.replace(harness.ctx("test", client), notifier=notifier_for(hook.url))
        result = start_rollout(RolloutRequest(ctx, RELEASE))
    assert result.outcome is Outcome.ROLLED_BACK
    texts = hook.texts()
    assert len(texts) == 4, texts
    assert " HALTED at batch " in texts[1] and "failed" in texts[1]
    assert "rolled back 3 minion(s) to rel-ba9876543210" in texts[2]
    assert "finished: ROLLED_BACK" in texts[3]


def test_only_the_configured_events(harness: Harness) -> None:
    with webhook_receiver() as hook:
        ctx = dataclasses.replace(harness.ctx("test", ScriptedSaltClient(TEST_FLEET)),
                                  notifier=notifier_for(hook.url, events=["finished"]))
        start_rollout(RolloutRequest(ctx, RELEASE))
    assert len(hook.texts()) == 1 and "finished" in hook.texts()[0]


@pytest.mark.parametrize("broken", ["http 500", "nothing listening"])
def test_a_failing_webhook_never_breaks_the_rollout(harness: Harness, broken: str) -> None:
    if broken == "http 500":
        with webhook_receiver(status=500) as hook:
            ctx = dataclasses.replace(harness.ctx("test", ScriptedSaltClient(TEST_FLEET)),
                                      notifier=notifier_for(hook.url))
            result = start_rollout(RolloutRequest(ctx, RELEASE))
    else:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]  # closed again: connections are refused
        ctx = dataclasses.replace(harness.ctx("test", ScriptedSaltClient(TEST_FLEET)),
                                  notifier=notifier_for(f"http://127.0.0.1:{port}/hook", timeout_seconds=1))
        result = start_rollout(RolloutRequest(ctx, RELEASE))
    assert result.outcome is Outcome.SUCCEEDED
    failed = [r for r in journal(harness) if r["event"] == "notify_failed"]
    assert [f["notification"] for f in failed] == ["started", "finished"]
    assert all(f["channel"] == "webhook" and f["error"] for f in failed)


def test_a_rollout_inside_a_freeze_window_is_refused_before_anything_runs(harness: Harness) -> None:
    harness.config = make_config(test={"freeze": [ALWAYS]})
    client = ScriptedSaltClient(TEST_FLEET)
    with pytest.raises(FreezeRefused) as exc:
        start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))
    assert exc.value.exit_code == 1 and "'change-freeze'" in exc.value.message
    assert client.published == [] and RolloutStore(harness.state_dir).latest("test") is None


def test_an_override_runs_and_is_journaled(harness: Harness) -> None:
    harness.config = make_config(test={"freeze": [ALWAYS]})
    result = start_rollout(RolloutRequest(harness.ctx("test", ScriptedSaltClient(TEST_FLEET)), RELEASE,
                           override_freeze="INC-4711 hotfix, approved by the CAB"))
    assert result.outcome is Outcome.SUCCEEDED
    overridden = [r for r in journal(harness) if r["event"] == "freeze_overridden"]
    assert len(overridden) == 1
    assert overridden[0]["window"] == "change-freeze" and overridden[0]["reason"] == "INC-4711 hotfix, approved by the CAB"
    assert overridden[0]["by"]
    logged = [json.loads(line) for line in (harness.state_dir / OVERRIDES_FILE).read_text().splitlines()]
    assert [(o["action"], o["release"], o["window"]) for o in logged] == [("rollout", RELEASE, "change-freeze")]
